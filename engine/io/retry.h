#pragma once
// The one retry loop: the executor's attempts, the Vast client's calls, destroy's backoff and
// the wait for an uploaded log all run through retry(), each with a RetryPolicy literal.
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "engine/io/cancel_token.h"
#include "engine/io/clock.h"
#include "engine/io/random_source.h"
#include "engine/io/retry_policy.h"
#include "engine/io/step_error.h"

namespace flowrun {

// What the caller hears after every failed attempt that was not a cancellation. With
// decision.retry a sleep of decision.delay follows; without it the error is rethrown.
struct FailedAttempt {
  int attempt;  // 1-based
  const StepError& error;
  const RetryDecision& decision;
};
using OnFailedAttempt = std::function<void(const FailedAttempt&)>;

// The knobs few callers need.
struct RetryOptions {
  // Where backoff jitter comes from (borrowed); none: no jitter, the full delay.
  RandomSource* random = nullptr;
  // When the first attempt started, for max_elapsed (a resumed step's first start); none: now.
  std::optional<TimePoint> started;
  // The decision's reason when `deadline` leaves no time for the next attempt.
  std::string deadline_reason = "the deadline leaves no time for another attempt";
};

// Calls op(attempt), attempt 1-based, until it returns; returns what it returned. When op
// throws a StepError that `policy` retries (decide_retry) and the next attempt would start
// before `deadline`, calls on_failure and sleeps on `clock`; otherwise calls on_failure and
// rethrows. Cancellation is never retried: a StepError of kind cancelled, or any error once
// `cancel` has fired, is rethrown as it is without on_failure; a cancelled token before an
// attempt or during a sleep throws StepError::cancelled(cancel.reason()). Exceptions other
// than StepError pass through untouched, and so does anything on_failure throws. Time comes
// only from `clock`.
template <class Op>
auto retry(const RetryPolicy& policy, Clock& clock, const CancelToken& cancel, std::optional<TimePoint> deadline,
           Op&& op, const OnFailedAttempt& on_failure = {}, const RetryOptions& options = {})
    -> std::invoke_result_t<Op&, int>;

// The loop itself, for op's result type erased: `attempt_once` stores op's result.
void retry_loop(const RetryPolicy& policy, Clock& clock, const CancelToken& cancel, std::optional<TimePoint> deadline,
                const std::function<void(int)>& attempt_once, const OnFailedAttempt& on_failure,
                const RetryOptions& options);

template <class Op>
auto retry(const RetryPolicy& policy, Clock& clock, const CancelToken& cancel, std::optional<TimePoint> deadline,
           Op&& op, const OnFailedAttempt& on_failure, const RetryOptions& options) -> std::invoke_result_t<Op&, int> {
  using Result = std::invoke_result_t<Op&, int>;
  if constexpr (std::is_void_v<Result>) {
    retry_loop(
        policy, clock, cancel, deadline, [&](int attempt) { op(attempt); }, on_failure, options);
  } else {
    std::optional<Result> result;
    retry_loop(
        policy, clock, cancel, deadline, [&](int attempt) { result.emplace(op(attempt)); }, on_failure, options);
    return std::move(*result);
  }
}

}  // namespace flowrun
