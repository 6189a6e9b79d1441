#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/io/json.h"
#include "engine/io/run_state.h"
#include "engine/step_api/execution_recorder.h"

namespace flowrun {

class Journal;
class LogHub;
class Redactor;
struct RunResult;
struct Workflow;

// The run an observer is told about; everything borrowed for the length of the run.
struct RunContext {
  const std::string& run_id;
  const Workflow& workflow;
  const Json& inputs;
  Journal& journal;
  const Redactor& redactor;
  const LogHub& logs;
};

// Something that watches runs beside the journal: notifications, metrics, the terminal's live
// table, the served view. One lives as long as the process (a monitor's every tick); each hook
// is called on the thread that runs the workflow.
class RunObserver {
 public:
  virtual ~RunObserver() = default;
  // A run starts or resumes: wrap the recorder its executor and steps report to (usually in a
  // ForwardingRecorder) and return the outermost one.
  virtual std::unique_ptr<ExecutionRecorder> run_started(const RunContext& run,
                                                         std::unique_ptr<ExecutionRecorder> recorder) {
    (void)run;
    return recorder;
  }
  // The run ended in `state` (detached included), before the end is recorded in the journal: what
  // must outlive a crash is written now (a notification's outbox row).
  virtual void run_ending(const RunContext& run, RunState state, const RunResult& result) {
    (void)run, (void)state, (void)result;
  }
  // After the summary was printed and the recorder from run_started is gone: time-bounded
  // finishing work (delivering what is due, clearing the terminal's table).
  virtual void run_ended(const RunContext& run, RunState state) { (void)run, (void)state; }
};

// The observers of one process, called in the order they were added (run_ended in reverse).
class RunObservers {
 public:
  void add(std::unique_ptr<RunObserver> observer) { observers_.push_back(std::move(observer)); }
  std::unique_ptr<ExecutionRecorder> run_started(const RunContext& run, std::unique_ptr<ExecutionRecorder> recorder);
  void run_ending(const RunContext& run, RunState state, const RunResult& result);
  void run_ended(const RunContext& run, RunState state);
  bool empty() const { return observers_.empty(); }

 private:
  std::vector<std::unique_ptr<RunObserver>> observers_;
};

}  // namespace flowrun

namespace flowrun {

struct ExecOptions;

// The observers a command's options ask for, in the order they wrap the recorder; null (the
// reason printed) when one cannot start. The one place a new watcher of runs is added.
std::unique_ptr<RunObservers> make_run_observers(const ExecOptions& o, Journal& journal);

}  // namespace flowrun
