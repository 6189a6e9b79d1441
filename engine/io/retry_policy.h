#pragma once
#include <optional>
#include <string>
#include <string_view>
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

// One `on:` condition, parsed once when the workflow loads.
struct RetryCondition {
  enum class Kind {
    kTransient,  // transient, and timeout: the next attempt may well finish
    kTimeout,
    kHttpStatus,  // an HTTP status in [low, high]
    kExit,        // a process exited with code `low`
    kAny,         // anything but cancellation
  };
  Kind kind = Kind::kTransient;
  int low = 0;
  int high = 0;

  static RetryCondition transient() { return {Kind::kTransient}; }
  static RetryCondition timeout() { return {Kind::kTimeout}; }
  static RetryCondition http(int low, int high) { return {Kind::kHttpStatus, low, high}; }
  static RetryCondition exit(int code) { return {Kind::kExit, code}; }
  static RetryCondition any() { return {Kind::kAny}; }
  bool operator==(const RetryCondition&) const = default;
};

// The condition `text` names (transient, timeout, http_429, http_5xx, exit:N, any), or nullopt
// for anything else.
std::optional<RetryCondition> parse_retry_condition(std::string_view text);

// Whether an error matches one condition. Cancellation never matches.
bool error_matches(const RetryCondition& condition, const StepError& error);

struct RetryPolicy {
  int attempts = 1;  // every attempt, the first included: 1 means no retry
  std::vector<RetryCondition> on{RetryCondition::transient()};
  BackoffPolicy backoff;
  std::optional<Duration> max_elapsed;
};

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
RetryDecision decide_retry(const RetryPolicy& policy, int attempt, const StepError& error, Duration elapsed,
                           RandomSource& random);

}  // namespace flowrun
