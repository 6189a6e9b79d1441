#include "engine/cli/run_observer.h"

namespace flowrun {

std::unique_ptr<ExecutionRecorder> RunObservers::run_started(const RunContext& run,
                                                             std::unique_ptr<ExecutionRecorder> recorder) {
  for (auto& observer : observers_) recorder = observer->run_started(run, std::move(recorder));
  return recorder;
}

void RunObservers::run_ending(const RunContext& run, RunState state, const RunResult& result) {
  for (auto& observer : observers_) observer->run_ending(run, state, result);
}

void RunObservers::run_ended(const RunContext& run, RunState state) {
  for (auto it = observers_.rbegin(); it != observers_.rend(); ++it) (*it)->run_ended(run, state);
}

}  // namespace flowrun
