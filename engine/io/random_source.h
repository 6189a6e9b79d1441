#pragma once
#include <random>

#include "engine/io/mutex.h"

namespace flowrun {

// Where randomness comes from (backoff jitter); injected so tests are deterministic.
class RandomSource {
 public:
  virtual ~RandomSource() = default;
  // A uniform number in [0, 1].
  virtual double uniform01() = 0;
};

class SystemRandom final : public RandomSource {
 public:
  SystemRandom() : engine_(std::random_device{}()) {}
  double uniform01() override {
    MutexLock lock(mutex_);
    return std::uniform_real_distribution<double>(0.0, 1.0)(engine_);
  }

 private:
  Mutex mutex_;
  std::mt19937_64 engine_ GUARDED_BY(mutex_);
};

// Always returns the same value: 0 gives the shortest jittered delay, 1 the longest.
class FixedRandom final : public RandomSource {
 public:
  explicit FixedRandom(double value) : value_(value) {}
  double uniform01() override { return value_; }

 private:
  double value_;
};

}  // namespace flowrun
