#pragma once
// One monitor per scheduled workflow: two `flowrun batch_results.yaml` started by mistake (a
// systemd unit and a terminal) must never process the same batch twice.
#include <filesystem>
#include <memory>
#include <string>

namespace flowrun {

// An advisory lock (flock) on STATE_DIR/locks/NAME.lock. The kernel drops it when the holding
// process ends however it ends, so a crash or SIGKILL never leaves a stale lock behind.
class MonitorLock {
 public:
  // The lock, or null and what its holder wrote in the file ("pid 123 on host, since
  // 2026-11-23T10:00:00Z").
  struct Attempt {
    std::unique_ptr<MonitorLock> lock;
    std::string holder;  // when refused
  };
  // Takes the lock unless another process holds it. Throws JournalError when the lock
  // file cannot be opened or locked at all.
  static Attempt try_acquire(const std::filesystem::path& state_dir, const std::string& name);
  ~MonitorLock();
  MonitorLock(const MonitorLock&) = delete;
  MonitorLock& operator=(const MonitorLock&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  MonitorLock(int fd, std::filesystem::path path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::filesystem::path path_;
};

// The lock name for a workflow name: letters, digits, '-', '_' and '.' kept, the rest '_'.
std::string lock_name(const std::string& workflow_name);

}  // namespace flowrun
