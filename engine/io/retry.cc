#include "engine/io/retry.h"

namespace flowrun {

void retry_loop(const RetryPolicy& policy, Clock& clock, const CancelToken& cancel, std::optional<TimePoint> deadline,
                const std::function<void(int)>& attempt_once, const OnFailedAttempt& on_failure,
                const RetryOptions& options) {
  // Without a source of randomness the policy's delays are taken whole.
  FixedRandom whole_delay(1.0);
  RandomSource& random = options.random ? *options.random : whole_delay;
  const TimePoint started = options.started.value_or(clock.now());
  for (int attempt = 1;; ++attempt) {
    if (cancel.cancelled()) throw StepError::cancelled(cancel.reason());
    try {
      attempt_once(attempt);
      return;
    } catch (const StepError& error) {
      if (error.kind() == ErrorKind::kCancelled || cancel.cancelled()) throw;
      const TimePoint now = clock.now();
      RetryDecision decision = decide_retry(policy, attempt, error, now - started, random);
      if (decision.retry && deadline && now + decision.delay >= *deadline) {
        decision.retry = false;
        decision.reason = options.deadline_reason;
      }
      if (on_failure) on_failure(FailedAttempt{attempt, error, decision});
      if (!decision.retry) throw;
      if (!clock.sleep_for(decision.delay, cancel)) throw StepError::cancelled(cancel.reason());
    }
  }
}

}  // namespace flowrun
