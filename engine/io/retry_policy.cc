#include "engine/io/retry_policy.h"

#include <algorithm>
#include <cmath>

namespace flowrun {

bool is_valid_retry_condition(const std::string& on) {
  if (on == "transient" || on == "timeout" || on == "http_429" || on == "http_5xx" || on == "any")
    return true;
  if (on.rfind("exit:", 0) == 0 && on.size() > 5)
    return std::all_of(on.begin() + 5, on.end(), [](char c) { return c >= '0' && c <= '9'; });
  return false;
}

bool error_matches(const std::string& condition, const StepError& error) {
  if (error.kind() == ErrorKind::kCancelled) return false;
  if (condition == "any") return true;
  // An attempt that timed out is a transient failure too: the next attempt may well finish.
  if (condition == "transient")
    return error.kind() == ErrorKind::kTransient || error.kind() == ErrorKind::kTimeout;
  if (condition == "timeout") return error.kind() == ErrorKind::kTimeout;
  if (condition == "http_429") return error.http_status() == 429;
  if (condition == "http_5xx") return error.http_status() >= 500 && error.http_status() <= 599;
  if (condition.rfind("exit:", 0) == 0)
    return error.kind() == ErrorKind::kExit && std::to_string(error.exit_code()) == condition.substr(5);
  return false;
}

Duration backoff_delay(const BackoffPolicy& policy, int attempt, RandomSource& random) {
  double base = static_cast<double>(policy.initial.count()) *
                std::pow(policy.factor, std::max(0, attempt - 1));
  double capped = std::min(base, static_cast<double>(policy.max.count()));
  double r = std::clamp(random.uniform01(), 0.0, 1.0);
  double jittered = capped;
  switch (policy.jitter) {
    case Jitter::kNone: break;
    case Jitter::kFull: jittered = capped * r; break;
    case Jitter::kEqual: jittered = capped / 2 + (capped / 2) * r; break;
  }
  return Duration(static_cast<Duration::rep>(std::llround(std::min(jittered, capped))));
}

RetryDecision decide_retry(const RetryPolicy& policy, int attempt, const StepError& error,
                           Duration elapsed, RandomSource& random) {
  RetryDecision d;
  if (error.kind() == ErrorKind::kCancelled) {
    d.reason = "cancelled";
    return d;
  }
  bool matches = std::any_of(policy.on.begin(), policy.on.end(),
                             [&](const std::string& c) { return error_matches(c, error); });
  if (!matches) {
    d.reason = "error kind " + error.kind_name() + " is not retried";
    return d;
  }
  if (attempt >= policy.attempts) {
    d.reason = "attempts exhausted (" + std::to_string(attempt) + "/" +
               std::to_string(policy.attempts) + ")";
    return d;
  }
  d.delay = error.retry_after() ? *error.retry_after() : backoff_delay(policy.backoff, attempt, random);
  if (policy.max_elapsed && elapsed + d.delay > *policy.max_elapsed) {
    d.reason = "max_elapsed " + format_duration(*policy.max_elapsed) + " would be exceeded";
    return d;
  }
  d.retry = true;
  return d;
}

}  // namespace flowrun
