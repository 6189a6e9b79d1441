#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "engine/io/random_source.h"
#include "engine/io/retry_policy.h"
#include "engine/notify/channel.h"
#include "engine/notify/outbox.h"

namespace flowrun {

// Delivers due outbox rows of any run: each through its channel; several due item events of one
// run for one channel as one digest ({event: "digest", events: [...]}, the rows marked
// `digested`); a failure tried again after backoff_delay (attempts kept in the row, a receiver's
// Retry-After respected), given up as `failed` after kMaxAttempts or a permanent error. Never
// throws: problems go to `warn` (texts free of targets).
class Deliverer {
 public:
  static constexpr int kMaxAttempts = 10;
  // How long a row taken for delivery is left alone by other processes.
  static constexpr int64_t kLeaseMs = 60'000;

  Deliverer(Outbox& outbox, ChannelServices services, RandomSource& random,
            std::function<void(const std::string&)> warn, std::function<int64_t()> now_ms);
  // One pass over the rows due now; returns how many rows were settled (sent, digested, failed).
  int deliver_due();
  BackoffPolicy& backoff() { return backoff_; }

 private:
  int deliver_group(const std::vector<OutboxRow>& group);

  Outbox& outbox_;
  ChannelServices services_;
  RandomSource& random_;
  std::function<void(const std::string&)> warn_;
  std::function<int64_t()> now_ms_;
  BackoffPolicy backoff_{std::chrono::seconds(1), 2.0, std::chrono::minutes(5), Jitter::kEqual};
};

}  // namespace flowrun
