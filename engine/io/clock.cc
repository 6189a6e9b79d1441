#include "engine/io/clock.h"

#include <algorithm>

#include "engine/io/fiber_scheduler.h"

namespace flowrun {

TimePoint RealClock::now() { return std::chrono::time_point_cast<Duration>(std::chrono::steady_clock::now()); }

WallTime RealClock::wall_now() { return std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now()); }

bool RealClock::sleep_for(Duration d, const CancelToken& cancel) {
  if (d <= Duration::zero()) return !cancel.cancelled();
  if (FiberScheduler* fibers = FiberScheduler::current()) return fibers->sleep_until(now() + d, cancel);
  return !cancel.wait_for(d);
}

TimePoint VirtualClock::now() {
  MutexLock lock(mutex_);
  return now_;
}

WallTime VirtualClock::wall_now() {
  MutexLock lock(mutex_);
  return std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now()) + (now_ - kStart);
}

bool VirtualClock::sleep_for(Duration d, const CancelToken& cancel) {
  if (cancel.cancelled()) return false;
  MutexLock lock(mutex_);
  sleeps_.push_back(d);
  if (FiberScheduler* fibers = FiberScheduler::current()) {
    const TimePoint until = now_ + std::max(d, Duration::zero());
    lock.unlock();  // the scheduler takes it to read the time
    return fibers->sleep_until(until, cancel);
  }
  if (d > Duration::zero()) now_ += d;
  return true;
}

void VirtualClock::advance_to(TimePoint t) {
  MutexLock lock(mutex_);
  now_ = std::max(now_, t);
}

void VirtualClock::advance(Duration d) {
  MutexLock lock(mutex_);
  now_ += d;
}

std::vector<Duration> VirtualClock::sleeps() const {
  MutexLock lock(mutex_);
  return sleeps_;
}

}  // namespace flowrun
