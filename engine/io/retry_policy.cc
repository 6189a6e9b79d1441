#include "engine/io/retry_policy.h"

#include <algorithm>
#include <cmath>

namespace flowrun {

std::optional<RetryCondition> parse_retry_condition(std::string_view text) {
  if (text == "transient") return RetryCondition::transient();
  if (text == "timeout") return RetryCondition::timeout();
  if (text == "http_429") return RetryCondition::http(429, 429);
  if (text == "http_5xx") return RetryCondition::http(500, 599);
  if (text == "any") return RetryCondition::any();
  if (text.rfind("exit:", 0) != 0 || text.size() == 5) return std::nullopt;
  const std::string_view digits = text.substr(5);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) return std::nullopt;
  // "exit:03" or a code past int is valid but names no code a process reports: it never matches.
  int code = -1;
  if (digits.size() <= 9 && (digits.size() == 1 || digits[0] != '0')) code = std::stoi(std::string(digits));
  return RetryCondition::exit(code);
}

bool error_matches(const RetryCondition& condition, const StepError& error) {
  if (error.kind() == ErrorKind::kCancelled) return false;
  switch (condition.kind) {
    case RetryCondition::Kind::kAny:
      return true;
    case RetryCondition::Kind::kTransient:
      return error.kind() == ErrorKind::kTransient || error.kind() == ErrorKind::kTimeout;
    case RetryCondition::Kind::kTimeout:
      return error.kind() == ErrorKind::kTimeout;
    case RetryCondition::Kind::kHttpStatus:
      return error.http_status() >= condition.low && error.http_status() <= condition.high;
    case RetryCondition::Kind::kExit:
      return error.kind() == ErrorKind::kExit && condition.low >= 0 && error.exit_code() == condition.low;
  }
  return false;
}

Duration backoff_delay(const BackoffPolicy& policy, int attempt, RandomSource& random) {
  double base = static_cast<double>(policy.initial.count()) * std::pow(policy.factor, std::max(0, attempt - 1));
  double capped = std::min(base, static_cast<double>(policy.max.count()));
  double r = std::clamp(random.uniform01(), 0.0, 1.0);
  double jittered = capped;
  switch (policy.jitter) {
    case Jitter::kNone:
      break;
    case Jitter::kFull:
      jittered = capped * r;
      break;
    case Jitter::kEqual:
      jittered = capped / 2 + (capped / 2) * r;
      break;
  }
  return Duration(static_cast<Duration::rep>(std::llround(std::min(jittered, capped))));
}

RetryDecision decide_retry(const RetryPolicy& policy, int attempt, const StepError& error, Duration elapsed,
                           RandomSource& random) {
  RetryDecision d;
  if (error.kind() == ErrorKind::kCancelled) {
    d.reason = "cancelled";
    return d;
  }
  bool matches =
      std::any_of(policy.on.begin(), policy.on.end(), [&](const RetryCondition& c) { return error_matches(c, error); });
  if (!matches) {
    d.reason = "error kind " + error.kind_name() + " is not retried";
    return d;
  }
  if (attempt >= policy.attempts) {
    d.reason = "attempts exhausted (" + std::to_string(attempt) + "/" + std::to_string(policy.attempts) + ")";
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
