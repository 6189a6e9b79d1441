#pragma once
#include <chrono>
#include <vector>

#include "engine/io/cancel_token.h"
#include "engine/io/duration.h"
#include "engine/io/mutex.h"

namespace flowrun {

using TimePoint = std::chrono::time_point<std::chrono::steady_clock, Duration>;
using WallTime = std::chrono::time_point<std::chrono::system_clock, Duration>;

// Where time comes from. Policies, pollers and the executor take a Clock so that tests run a
// two-hour timeout in virtual time, in milliseconds.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() = 0;
  // The calendar time, to compare with times another process recorded (a journal's started_ms).
  virtual WallTime wall_now() = 0;
  // Sleeps for `d` or until `cancel` fires. Returns false when cancelled.
  // On a fiber (engine/io/fiber_scheduler.h) only that fiber waits; elsewhere the thread does.
  virtual bool sleep_for(Duration d, const CancelToken& cancel) = 0;
  // For a FiberScheduler whose fibers all wait: whether time only passes when told to, and the
  // telling.
  virtual bool is_virtual() const { return false; }
  virtual void advance_to(TimePoint) {}
};

class RealClock final : public Clock {
 public:
  TimePoint now() override;
  WallTime wall_now() override;
  bool sleep_for(Duration d, const CancelToken& cancel) override;
};

// Virtual time: sleep_for advances the clock at once (off fibers) and records the delay. Its wall time is the
// real one plus the virtual time passed, so rows a journal writes with the real wall clock (and a
// test's edits to them) stay comparable with it.
class VirtualClock final : public Clock {
 public:
  TimePoint now() override;
  WallTime wall_now() override;
  // On a fiber, the fiber waits until its scheduler has jumped to the end of the sleep: the
  // fibers of a for_each sleep side by side, as the threads of real time do.
  bool sleep_for(Duration d, const CancelToken& cancel) override;
  bool is_virtual() const override { return true; }
  void advance_to(TimePoint t) override;
  void advance(Duration d);
  std::vector<Duration> sleeps() const;

 private:
  mutable Mutex mutex_;
  static constexpr TimePoint kStart{Duration(1'000'000)};
  TimePoint now_ GUARDED_BY(mutex_) = kStart;
  std::vector<Duration> sleeps_ GUARDED_BY(mutex_);
};

}  // namespace flowrun
