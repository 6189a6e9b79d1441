#include "engine/journal/monitor_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "engine/journal/journal.h"

namespace flowrun {

std::string lock_name(const std::string& workflow_name) {
  std::string out;
  for (unsigned char c : workflow_name) out += std::isalnum(c) || c == '-' || c == '_' || c == '.' ? char(c) : '_';
  return out.empty() ? "workflow" : out;
}

MonitorLock::Attempt MonitorLock::try_acquire(const std::filesystem::path& state_dir, const std::string& name) {
  const std::filesystem::path dir = state_dir / "locks";
  std::filesystem::create_directories(dir);
  const std::filesystem::path path = dir / (lock_name(name) + ".lock");
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw JournalError("cannot open " + path.string() + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char buf[256] = {0};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    std::string holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "another process";
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    ::close(fd);
    if (err != EWOULDBLOCK) throw JournalError("cannot lock " + path.string() + ": " + std::strerror(err));
    return {nullptr, holder};
  }
  // Say who holds it, for the message the next one prints.
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char since[32];
  std::strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", &tm);
  const std::string who = "pid " + std::to_string(::getpid()) + " on " + this_host() + ", since " + since + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, who.data(), who.size(), 0) < 0) {
    // The lock holds without the note; only the refusal message of a second monitor is poorer.
  }
  return {std::unique_ptr<MonitorLock>(new MonitorLock(fd, path)), {}};
}

MonitorLock::~MonitorLock() {
  // Empty the note first: a reader racing the unlock then sees no stale holder.
  if (::ftruncate(fd_, 0) != 0) {
  }
  ::close(fd_);  // releases the flock
}

}  // namespace flowrun
