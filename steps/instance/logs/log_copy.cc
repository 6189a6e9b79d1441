#include "steps/instance/logs/log_copy.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <cerrno>

#include "engine/io/logging.h"
#include "engine/io/step_error.h"

namespace flowrun {

LogCopy::LogCopy(const std::filesystem::path& path) {
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd_ < 0)
    throw StepError::permanent("cannot open log_file " + path.string() + ": " + std::string(::strerror(errno)));
  path_ = path.string();
}

LogCopy::~LogCopy() {
  if (fd_ >= 0) ::close(fd_);
}

void LogCopy::flush(const StepLog& log) {
  if (buffer_.empty()) return;
  std::string_view rest = buffer_;
  while (!rest.empty()) {
    ssize_t n = ::write(fd_, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      log.warn("could not write to " + path_ + ": " + std::string(::strerror(errno)));
      break;
    }
    rest.remove_prefix(static_cast<size_t>(n));
  }
  buffer_.clear();
}

}  // namespace flowrun
