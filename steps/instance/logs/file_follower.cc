#include "steps/instance/logs/file_follower.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

namespace flowrun {
namespace {

// Closes a file descriptor on every way out.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Small enough that a chunk stays in L2 between pread's copy and the passes over it (line ends,
// '\r', the search): 128 KiB ran at 18 GiB/s, 1 MiB at 10 (memory bandwidth per pass).
constexpr size_t kChunk = 128 << 10;

}  // namespace

FileFollower::Result FileFollower::follow(const std::filesystem::path& path,
                                          const std::function<bool(std::string_view)>& on_line,
                                          const std::function<bool()>& keep_going,
                                          const std::function<bool(std::string_view)>& may_matter) {
  Result result;
  Fd file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  struct stat st {};
  if (file.fd < 0 || ::fstat(file.fd, &st) != 0) {
    result.missing = true;
    return result;
  }
  const bool other_file = opened_before_ && (st.st_dev != device_ || st.st_ino != inode_);
  const bool truncated = static_cast<uint64_t>(st.st_size) < offset_;
  if (other_file || truncated) {
    offset_ = 0;
    splitter_ = LineSplitter();
    result.restarted = true;
  }
  opened_before_ = true;
  device_ = st.st_dev;
  inode_ = st.st_ino;

  // Only as much buffer as there is to read: a poll that finds nothing new allocates nothing.
  const uint64_t appended = static_cast<uint64_t>(st.st_size) - offset_;
  std::vector<char> buffer(static_cast<size_t>(std::min<uint64_t>(appended, kChunk)));
  bool stop = false;
  auto deliver = [&](std::string_view line) {
    if (!stop && !on_line(line)) stop = true;
  };
  while (!buffer.empty() && !stop && keep_going()) {
    const ssize_t n = ::pread(file.fd, buffer.data(), buffer.size(), static_cast<off_t>(offset_));
    if (n <= 0) break;
    offset_ += static_cast<uint64_t>(n);
    result.bytes_read += static_cast<uint64_t>(n);
    const std::string_view chunk(buffer.data(), static_cast<size_t>(n));
    if (may_matter)
      splitter_.feed_filtered(chunk, may_matter, deliver);
    else
      splitter_.feed(chunk, deliver);
  }
  return result;
}

}  // namespace flowrun
