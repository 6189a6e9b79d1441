#pragma once
// A std::mutex the thread-safety analysis knows (engine/io/thread_annotations.h), and the one
// way to hold it: a MutexLock for a scope, which also waits on condition variables. A wait's
// predicate that reads guarded members is written `[this]() REQUIRES(mutex_) { ... }`.
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "engine/io/thread_annotations.h"

namespace flowrun {

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() ACQUIRE() { mutex_.lock(); }
  void unlock() RELEASE() { mutex_.unlock(); }

 private:
  friend class MutexLock;
  std::mutex mutex_;
};

// Holds a Mutex from construction to destruction (unlock() and lock() in between allowed).
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mutex) ACQUIRE(mutex) : lock_(mutex.mutex_) {}
  ~MutexLock() RELEASE() {}
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void unlock() RELEASE() { lock_.unlock(); }
  void lock() ACQUIRE() { lock_.lock(); }

  // std::condition_variable's waits, the mutex released while waiting and held again after.
  template <class Predicate>
  void wait(std::condition_variable& cv, Predicate ready) {
    cv.wait(lock_, ready);
  }
  template <class Rep, class Period, class Predicate>
  bool wait_for(std::condition_variable& cv, std::chrono::duration<Rep, Period> d, Predicate ready) {
    return cv.wait_for(lock_, d, ready);
  }
  template <class Clock, class Dur, class Predicate>
  bool wait_until(std::condition_variable& cv, std::chrono::time_point<Clock, Dur> t, Predicate ready) {
    return cv.wait_until(lock_, t, ready);
  }

 private:
  std::unique_lock<std::mutex> lock_;
};

}  // namespace flowrun
