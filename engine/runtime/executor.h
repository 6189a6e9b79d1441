#pragma once
#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "engine/io/cancel_token.h"
#include "engine/io/duration.h"
#include "engine/io/json.h"
#include "engine/io/logging.h"
#include "engine/io/mutex.h"
#include "engine/io/random_source.h"
#include "engine/io/run_state.h"
#include "engine/model/workflow.h"
#include "engine/runtime/outcome.h"
#include "engine/step_api/execution_recorder.h"
#include "engine/step_api/step_context.h"

namespace flowrun {

class StepRegistry;
class StepError;

// What happened to one step execution, for the summary (and, later, the journal).
struct StepRecord {
  std::string path;  // "videos[2].provision"
  std::string type;  // step type, "for_each" or "group"
  StepState status = StepState::kSucceeded;
  int attempts = 0;
  Duration duration{0};
  std::string error;
};

struct RunResult {
  RunState status = RunState::kSucceeded;
  std::string error;  // the failure to name first: a failed `finally` step, else the first failure
  std::vector<StepRecord> records;
  Json steps = Json::object();  // step id -> {status, outputs, error}
  Duration duration{0};
};

struct ExecutorOptions {
  std::string run_id = "local";
  bool dry_run = false;  // print what would run; only side-effect-free steps execute
  // Where --dry-run prints its plan (stdout in the CLI).
  std::function<void(const std::string&)> print = [](const std::string&) {};
  // Journal of this run (borrowed, may be null). Steps it records as succeeded or skipped are
  // not run again: their recorded outputs are reused.
  ExecutionRecorder* recorder = nullptr;
  // When the run is cancelled: false runs the pending finally steps (the run ends cancelled),
  // true detaches (they stay owed, for `flowrun resume` or `flowrun cancel`).
  bool detach_on_cancel = false;
  // Set (by another thread) before a cancel that must clean up whatever detach_on_cancel says: a
  // cancel asked for from the live view runs the finally steps. Borrowed, may be null.
  const std::atomic<bool>* cleanup_on_cancel = nullptr;
  // `flowrun cancel`: run no step, only the finally steps owed by what was started.
  bool finally_only = false;
};

// Runs a loaded workflow: sequences, if, for_each with a bounded pool of threads, groups,
// finally blocks, retries, timeouts and polling. Borrows everything it is given; one run().
class Executor {
 public:
  Executor(const Workflow& workflow, const StepRegistry& registry, Services& services, RandomSource& random,
           const LogHub& logs, ExecutorOptions options);

  // Runs `steps`, then `finally`. Cancelling `cancel` stops the steps (finally still runs);
  // cancelling `finally_cancel` as well stops the finally steps too (a second Ctrl+C).
  RunResult run(const Json& inputs, CancelToken& cancel, CancelToken& finally_cancel);

 private:
  using Outcome = flowrun::Outcome;  // engine/runtime/outcome.h

  Outcome run_sequence(const std::vector<Step>& steps, Json& scope, CancelToken& cancel, const std::string& prefix);
  bool detaches_on_cancel() const {
    return options_.detach_on_cancel && !(options_.cleanup_on_cancel && options_.cleanup_on_cancel->load());
  }
  Outcome run_step(const Step& step, Json& scope, CancelToken& cancel, const std::string& path);
  // run_step with the step's `env:` applied to the scope's env for its duration.
  [[gnu::noinline]] Outcome run_step_in_env(const Step& step, Json& scope, CancelToken& cancel,
                                            const std::string& path);
  // What run_step does before the step runs: its outcome when it does not (reused from an
  // earlier process, skipped by `if`, a broken `if`), which it records.
  [[gnu::noinline]] std::optional<Outcome> settle_before_running(const Step& step, Json& scope, const std::string& path,
                                                                 const StepLog& log);
  // A group's steps, then its finally steps.
  [[gnu::noinline]] Outcome run_group(const Step& step, Json& scope, CancelToken& cancel, const std::string& path);
  // What run_step does after: the step's result into the journal, the records and scope (where
  // `outputs` is moved).
  [[gnu::noinline]] void finish_step(const Step& step, Json& scope, const std::string& path, const StepLog& log,
                                     const Outcome& o, Json& outputs, int attempts, TimePoint started);
  // Resolves the step's parameters (or shows them, in a dry run) and hands it to an
  // AttemptRunner. `log` is the step's own logger, made once by run_step.
  Outcome run_action(const Step& step, Json& scope, CancelToken& cancel, const std::string& path, const StepLog& log,
                     Json& outputs, int& attempts);
  // Resolves the parameters into `with`; the outcome instead when the step is not to run (a dry
  // run) or they cannot be resolved.
  [[gnu::noinline]] std::optional<Outcome> resolve_with(const Step& step, const StepType& type, Json& scope,
                                                        const std::string& path, const StepLog& log, Json& with);
  // Out of line: its ForEachRunner would otherwise land in run_step's frame, which every
  // waiting item holds.
  [[gnu::noinline]] Outcome run_for_each(const Step& step, Json& scope, CancelToken& cancel, const std::string& path,
                                         const StepLog& log, Json& outputs);
  Outcome run_finally(const std::vector<Step>& steps, Json& scope, const std::string& prefix, const Outcome& body);
  // Whether `step` still runs after an earlier step of its sequence failed: only when its `if`
  // asks about the outcome (always(), failure(), ...), as in GitHub Actions.
  static bool runs_after_failure(const Step& step);
  // Resolves an `env:` block into the scope's own env (own_in_scope); the expression's error, or empty.
  static std::string apply_env(const Json& env, Json& scope);
  // `flowrun cancel`: runs only the finally steps owed by what an earlier process started.
  Outcome run_owed_finally(const std::vector<Step>& steps, Json& scope, const std::string& prefix);
  bool reuse_recorded(const Step& step, Json& scope, const std::string& path, const StepLog& log, StepRecord& rec);
  void load_recorded(const std::vector<Step>& steps, Json& scope, const std::string& prefix);
  Json dry_run_action(const Step& step, Json& scope, const std::string& path);
  const StepType* type_of(const Step& step) const;
  // An action whose type declares no side effects (set, log): running it again is harmless.
  bool side_effect_free(const Step& step) const;
  void record(StepRecord r);

  const Workflow& workflow_;
  const StepRegistry& registry_;
  Services& services_;
  RandomSource& random_;
  const LogHub& logs_;
  ExecutorOptions options_;
  CancelToken* finally_cancel_ = nullptr;
  StepLog run_log_;
  Mutex mutex_;
  std::vector<StepRecord> records_ GUARDED_BY(mutex_);
};

}  // namespace flowrun
