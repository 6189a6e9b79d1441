#pragma once
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "engine/cancel_token.h"
#include "engine/execution_recorder.h"
#include "engine/duration.h"
#include "engine/json.h"
#include "engine/logging.h"
#include "engine/random_source.h"
#include "engine/step_context.h"
#include "engine/workflow.h"

namespace flowrun {

class StepRegistry;

enum class StepStatus { kSucceeded, kFailed, kSkipped, kCancelled };
enum class RunStatus { kSucceeded, kFailed, kCancelled };

const char* to_string(StepStatus s);
const char* to_string(RunStatus s);

// What happened to one step execution, for the summary (and, later, the journal).
struct StepRecord {
  std::string path;  // "videos[2].provision"
  std::string type;  // step type, "for_each" or "group"
  StepStatus status = StepStatus::kSucceeded;
  int attempts = 0;
  Duration duration{0};
  std::string error;
};

struct RunResult {
  RunStatus status = RunStatus::kSucceeded;
  std::string error;  // the first failure
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
  // When the run is cancelled: true runs the pending finally steps, false detaches (they stay
  // owed, for `flowrun resume` or `flowrun cancel`).
  bool finally_on_cancel = true;
  // `flowrun cancel`: run no step, only the finally steps owed by what was started.
  bool cleanup_only = false;
};

// Runs a loaded workflow: sequences, if, for_each with a bounded pool of threads, groups,
// finally blocks, retries, timeouts and polling. Borrows everything it is given; one run().
class Executor {
 public:
  Executor(const Workflow& workflow, const StepRegistry& registry, Services& services, RandomSource& random,
           const LogHub& logs, ExecutorOptions options);

  // Runs `steps`, then `finally`. Cancelling `cancel` stops the steps (finally still runs);
  // cancelling `cleanup_cancel` as well stops the finally steps too (a second Ctrl+C).
  RunResult run(const Json& inputs, CancelToken& cancel, CancelToken& cleanup_cancel);

 private:
  struct Outcome {
    enum class Status { kOk, kFailed, kCancelled } status = Status::kOk;
    std::string error;
    static Outcome ok() { return {}; }
    static Outcome failed(std::string e) { return {Status::kFailed, std::move(e)}; }
    static Outcome cancelled(std::string e) { return {Status::kCancelled, std::move(e)}; }
  };

  Outcome run_sequence(const std::vector<Step>& steps, Json& scope, CancelToken& cancel, const std::string& prefix);
  Outcome run_step(const Step& step, Json& scope, CancelToken& cancel, const std::string& path);
  // `log` is the step's own logger, made once by run_step.
  Outcome run_action(const Step& step, Json& scope, CancelToken& cancel, const std::string& path, const StepLog& log,
                     Json& outputs, int& attempts);
  Outcome run_for_each(const Step& step, Json& scope, CancelToken& cancel, const std::string& path,
                       const StepLog& log, Json& outputs);
  Outcome run_finally(const std::vector<Step>& steps, Json& scope, const std::string& prefix, const Outcome& body);
  Outcome run_cleanup(const std::vector<Step>& steps, Json& scope, const std::string& prefix);
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
  CancelToken* cleanup_cancel_ = nullptr;
  StepLog run_log_;
  std::mutex mutex_;
  std::vector<StepRecord> records_;  // GUARDED_BY(mutex_)
};

}  // namespace flowrun
