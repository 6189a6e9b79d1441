#pragma once
#include <optional>
#include <string>
#include <vector>

#include "engine/io/duration.h"
#include "engine/io/random_source.h"
#include "engine/io/step_error.h"

namespace flowrun {

enum class Jitter { kNone, kFull, kEqual };

struct BackoffPolicy {
  Duration initial{std::chrono::seconds(1)};
  double factor = 2.0;
  Duration max{std::chrono::seconds(60)};
  Jitter jitter = Jitter::kNone;
};

struct RetryPolicy {
  int attempts = 1;  // every attempt, the first included: 1 means no retry
  std::vector<std::string> on{"transient"};
  BackoffPolicy backoff;
  std::optional<Duration> max_elapsed;
};

// True when `on` is a retry condition the engine understands: transient, timeout, http_429,
// http_5xx, exit:N, any.
bool is_valid_retry_condition(const std::string& on);

// Whether an error matches one `on:` condition. Cancellation never matches.
bool error_matches(const std::string& condition, const StepError& error);

// The delay before attempt `attempt + 1`, after attempt `attempt` (1-based) failed:
// min(initial * factor^(attempt-1), max), then jitter, which never makes it exceed max.
Duration backoff_delay(const BackoffPolicy& policy, int attempt, RandomSource& random);

struct RetryDecision {
  bool retry = false;
  Duration delay{0};
  std::string reason;  // why not, for the log: "attempts exhausted (3/3)", ...
};

// Pure decision after attempt `attempt` failed with `error`, `elapsed` after the first start.
// A server's Retry-After wins over the computed delay, as long as it fits in max_elapsed.
RetryDecision decide_retry(const RetryPolicy& policy, int attempt, const StepError& error,
                           Duration elapsed, RandomSource& random);

}  // namespace flowrun
