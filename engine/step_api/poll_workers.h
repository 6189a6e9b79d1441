#pragma once
// Where pollers do their looking. A thousand `wait-for-marker` items are a thousand threads that
// mostly sleep between polls; if each also made its own HTTP requests, each would keep its own
// deep stack and its own malloc cache (glibc's per-thread tcache) full of what a request
// allocates: about 40 KiB a monitor that nobody uses between polls. The items' threads hand
// each poll to these workers instead and wait for it, so the memory a poll churns lives in a
// few threads. `core` workers are started as needed and kept while busy; a poll that waited
// `patience` for one (every worker held up, say by requests hanging until their timeout) gets
// a worker of its own, so a hanging request delays the others by at most that. Workers idle for
// `idle_limit` end.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>

#include "engine/io/duration.h"
#include "engine/io/mutex.h"

namespace flowrun {

class PollWorkers {
 public:
  struct Limits {
    size_t core = 16;
    Duration patience = std::chrono::seconds(1);
    Duration idle_limit = std::chrono::seconds(30);
  };
  PollWorkers() : PollWorkers(Limits{}) {}
  explicit PollWorkers(Limits limits) : limits_(limits) {}
  // Waits for the running work to finish and the workers to end.
  ~PollWorkers();
  PollWorkers(const PollWorkers&) = delete;
  PollWorkers& operator=(const PollWorkers&) = delete;

  // Runs `work` on a worker and returns when it is done, rethrowing what it threw.
  void run(const std::function<void()>& work);

  // Workers alive now (idle or busy).
  size_t threads() const;

 private:
  struct Job {
    const std::function<void()>* work = nullptr;
    std::exception_ptr error;
    bool taken = false;  // a worker has it
    bool done = false;
    std::condition_variable changed;  // taken or done; only its caller waits on it
  };
  void start_worker_locked() REQUIRES(mutex_);
  void work_loop() EXCLUDES(mutex_);

  const Limits limits_;
  mutable Mutex mutex_;
  std::condition_variable wake_;   // a job is queued, or the pool is stopping
  std::condition_variable ended_;  // a worker ended
  std::deque<Job*> queue_ GUARDED_BY(mutex_);
  size_t idle_ GUARDED_BY(mutex_) = 0;
  size_t threads_ GUARDED_BY(mutex_) = 0;
  bool stopping_ GUARDED_BY(mutex_) = false;
};

}  // namespace flowrun
