#include "engine/io/blocking_pool.h"

#include <thread>

namespace flowrun {

BlockingPool::~BlockingPool() {
  MutexLock lock(mutex_);
  stopping_ = true;
  wake_.notify_all();
  lock.wait(ended_, [this]() REQUIRES(mutex_) { return threads_ == 0; });
}

void BlockingPool::submit(std::function<void()> job) {
  MutexLock lock(mutex_);
  queue_.push_back(std::move(job));
  if (idle_ >= queue_.size()) {
    wake_.notify_one();
    return;
  }
  try {
    std::thread(&BlockingPool::work_loop, this).detach();
  } catch (...) {
    queue_.pop_back();  // the job goes back to its caller, which waits for nothing
    throw;
  }
  ++threads_;
}

size_t BlockingPool::threads() const {
  MutexLock lock(mutex_);
  return threads_;
}

void BlockingPool::work_loop() {
  MutexLock lock(mutex_);
  for (;;) {
    if (queue_.empty()) {
      if (stopping_) break;
      ++idle_;
      const bool woken =
          lock.wait_for(wake_, idle_limit_, [this]() REQUIRES(mutex_) { return !queue_.empty() || stopping_; });
      --idle_;
      if (!woken) break;  // idle too long
      continue;
    }
    std::function<void()> job = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    job();
    job = nullptr;  // what it captured goes now, not at the next job
    lock.lock();
  }
  --threads_;
  // The destructor waits for this; after it this thread touches nothing of the pool's but the
  // mutex it releases on return.
  ended_.notify_all();
}

}  // namespace flowrun
