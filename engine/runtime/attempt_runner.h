#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/io/cancel_token.h"
#include "engine/io/clock.h"
#include "engine/io/json.h"
#include "engine/io/logging.h"
#include "engine/io/random_source.h"
#include "engine/io/retry.h"
#include "engine/model/workflow.h"
#include "engine/runtime/outcome.h"
#include "engine/step_api/execution_recorder.h"
#include "engine/step_api/step_context.h"
#include "engine/step_api/step_type.h"

namespace flowrun {

class StepError;
struct FailedAttempt;

// Runs the attempts of one action step whose parameters are resolved: the step's timeout and
// attempt_timeout, its retry policy through the one retry loop (engine/io/retry.h), a
// StepContext per attempt, and each attempt's log lines and journal events. Borrows everything
// it is given; one run().
class AttemptRunner {
 public:
  // What the executor lends every attempt runner.
  struct Env {
    const Workflow& workflow;  // defaults and secrets
    Services& services;
    RandomSource& random;                   // backoff jitter
    ExecutionRecorder* recorder = nullptr;  // the run's journal; may be null
    std::string run_id;
  };
  // Runs one of the step's nested lists (on_stall) in `scope`, under `cancel`, at `path`.
  using RunNested =
      std::function<Outcome(const std::vector<Step>& steps, Json& scope, CancelToken& cancel, const std::string& path)>;

  // `described_as`: the step's type as the log names it ("exec", "lua:scripts/x.lua").
  AttemptRunner(const Env& env, const Step& step, const StepType& type, const Json& with, const std::string& path,
                std::string described_as, const StepLog& log, RunNested run_nested);

  // Attempts until one succeeds, the policy gives up, the step times out or `cancel` fires.
  // `outputs` gets the successful attempt's outputs, or what the last failed attempt found;
  // `attempts` how many attempts began.
  Outcome run(Json& scope, CancelToken& cancel, Json& outputs, int& attempts);

 private:
  // Sets the policies, the first start and the step's deadline; the retry loop's options.
  [[gnu::noinline]] RetryOptions begin();
  // One attempt. Returns ok, or failed when the step timed out; throws the attempt's StepError
  // (any other exception becomes StepError::permanent) for the retry loop to judge.
  Outcome attempt(int number, Json& scope, CancelToken& cancel, Json& outputs);
  // The parts of an attempt, out of line so that attempt()'s frame stays small (see attempt).
  std::optional<TimePoint> attempt_deadline() const;
  // Runs the nested list `list` (on_stall) for the `run`th time; its steps' results land in scope.
  [[gnu::noinline]] Json run_nested_list(const std::string& list, const Json& extra, Json& scope, CancelToken& cancel,
                                         int run);
  // The step type's run, or its poll loop.
  [[gnu::noinline]] Json perform(StepContext& ctx, int number);
  // Makes a successful attempt's outputs an object of valid UTF-8 within max_output; logs it.
  [[gnu::noinline]] void accept_outputs(Json& outputs, int number) const;
  // What a throwing attempt becomes: failed (the step timed out), or the StepError rethrown for
  // the retry loop, with `outputs` set to what it found.
  [[gnu::noinline]] Outcome failed_attempt(const std::exception& raw, int number, const CancelToken& cancel,
                                           Json& outputs);
  // Logs and journals a failed attempt; with no retry to come, sets `give_up_` to the message.
  void on_failure(const FailedAttempt& failed, const Json& scope);
  // " (not set in the environment: NAME)" for the unset declared secrets that the parameters
  // named by `error` use (any parameter's, on HTTP 401 or 403); empty when there are none.
  std::string unset_secrets_hint(const Json& scope, const StepError& error) const;

  const Env& env_;
  const Step& step_;
  const StepType& type_;
  const Json& with_;
  const std::string& path_;
  std::string described_as_;
  const StepLog& log_;
  RunNested run_nested_;

  StepPolicies policies_;
  TimePoint started_{};                     // this execution's first start, earlier when resumed
  std::optional<TimePoint> step_deadline_;  // from `timeout`, across attempts and resumes
  std::optional<std::string> give_up_;      // the failure message once the retries ended
};

}  // namespace flowrun
