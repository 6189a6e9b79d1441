#pragma once
// Threads for the calls that block (libcurl's perform, a child process's pipes) made by fibers,
// which must not hold up the thread their siblings share. A job runs on an idle thread, or on a
// new one when none is idle: a call that hangs until its time-out delays no other. Threads idle
// for `idle_limit` end, so the pool is as large as the most calls ever under way at once.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>

#include "engine/io/duration.h"
#include "engine/io/mutex.h"

namespace flowrun {

class BlockingPool {
 public:
  explicit BlockingPool(Duration idle_limit = std::chrono::seconds(30)) : idle_limit_(idle_limit) {}
  // Waits for the jobs under way and for the threads to end.
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // Runs `job` on a pool thread; it must not throw. Throws (and will not run it) when no thread
  // can be started.
  void submit(std::function<void()> job);
  // Threads alive now, busy or idle.
  size_t threads() const;

 private:
  void work_loop() EXCLUDES(mutex_);

  const Duration idle_limit_;
  mutable Mutex mutex_;
  std::condition_variable wake_;   // a job is queued, or the pool is stopping
  std::condition_variable ended_;  // a thread ended
  std::deque<std::function<void()>> queue_ GUARDED_BY(mutex_);
  size_t idle_ GUARDED_BY(mutex_) = 0;
  size_t threads_ GUARDED_BY(mutex_) = 0;
  bool stopping_ GUARDED_BY(mutex_) = false;
};

}  // namespace flowrun
