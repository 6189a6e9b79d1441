#include "engine/step_api/poll_workers.h"

#include <thread>

namespace flowrun {

PollWorkers::~PollWorkers() {
  MutexLock lock(mutex_);
  stopping_ = true;
  wake_.notify_all();
  lock.wait(ended_, [this]() REQUIRES(mutex_) { return threads_ == 0; });
}

void PollWorkers::run(const std::function<void()>& work) {
  Job job;
  job.work = &work;
  MutexLock lock(mutex_);
  queue_.push_back(&job);
  if (idle_ >= queue_.size())
    wake_.notify_one();
  else if (threads_ < limits_.core)
    start_worker_locked();
  while (!job.taken)
    if (!lock.wait_for(job.changed, limits_.patience, [&job] { return job.taken; })) start_worker_locked();
  lock.wait(job.changed, [&job] { return job.done; });
  if (job.error) std::rethrow_exception(job.error);
}

size_t PollWorkers::threads() const {
  MutexLock lock(mutex_);
  return threads_;
}

void PollWorkers::start_worker_locked() {
  ++threads_;
  std::thread(&PollWorkers::work_loop, this).detach();
}

void PollWorkers::work_loop() {
  MutexLock lock(mutex_);
  for (;;) {
    ++idle_;
    const bool woken =
        lock.wait_for(wake_, limits_.idle_limit, [this]() REQUIRES(mutex_) { return !queue_.empty() || stopping_; });
    --idle_;
    if (queue_.empty()) {
      if (!woken || stopping_) break;  // idle too long, or the pool is going away
      continue;
    }
    Job* job = queue_.front();
    queue_.pop_front();
    job->taken = true;
    job->changed.notify_one();
    lock.unlock();
    try {
      (*job->work)();
    } catch (...) {
      job->error = std::current_exception();
    }
    lock.lock();
    job->done = true;
    job->changed.notify_one();
  }
  --threads_;
  // The destructor waits for this; after it this thread touches nothing of the pool's but the
  // mutex it releases on return.
  ended_.notify_all();
}

}  // namespace flowrun
