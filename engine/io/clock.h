#pragma once
#include <chrono>
#include <vector>

#include "engine/io/cancel_token.h"
#include "engine/io/duration.h"
#include "engine/io/mutex.h"

namespace flowrun {

using TimePoint = std::chrono::time_point<std::chrono::steady_clock, Duration>;

// Where time comes from. Policies, pollers and the executor take a Clock so that tests run a
// two-hour timeout in virtual time, in milliseconds.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() = 0;
  // Sleeps for `d` or until `cancel` fires. Returns false when cancelled.
  virtual bool sleep_for(Duration d, const CancelToken& cancel) = 0;
};

class RealClock final : public Clock {
 public:
  TimePoint now() override;
  bool sleep_for(Duration d, const CancelToken& cancel) override;
};

// Virtual time: sleep_for advances the clock at once and records the delay.
class VirtualClock final : public Clock {
 public:
  TimePoint now() override;
  bool sleep_for(Duration d, const CancelToken& cancel) override;
  void advance(Duration d);
  std::vector<Duration> sleeps() const;

 private:
  mutable Mutex mutex_;
  TimePoint now_ GUARDED_BY(mutex_) = TimePoint(Duration(1'000'000));
  std::vector<Duration> sleeps_ GUARDED_BY(mutex_);
};

}  // namespace flowrun
