#include "engine/io/run_state.h"

namespace flowrun {

const char* to_string(RunState s) {
  switch (s) {
    case RunState::kRunning:
      return "running";
    case RunState::kSucceeded:
      return "succeeded";
    case RunState::kFailed:
      return "failed";
    case RunState::kPartial:
      return "partial";
    case RunState::kCancelled:
      return "cancelled";
    case RunState::kDetached:
      return "detached";
  }
  return "?";
}

const char* to_string(StepState s) {
  switch (s) {
    case StepState::kRunning:
      return "running";
    case StepState::kSucceeded:
      return "succeeded";
    case StepState::kFailed:
      return "failed";
    case StepState::kPartial:
      return "partial";
    case StepState::kSkipped:
      return "skipped";
    case StepState::kCancelled:
      return "cancelled";
  }
  return "?";
}

std::optional<RunState> parse_run_state(std::string_view name) {
  for (RunState s : {RunState::kRunning, RunState::kSucceeded, RunState::kFailed, RunState::kPartial,
                     RunState::kCancelled, RunState::kDetached})
    if (name == to_string(s)) return s;
  if (name == "interrupted") return RunState::kDetached;
  return std::nullopt;
}

std::optional<StepState> parse_step_state(std::string_view name) {
  for (StepState s : {StepState::kRunning, StepState::kSucceeded, StepState::kFailed, StepState::kPartial,
                      StepState::kSkipped, StepState::kCancelled})
    if (name == to_string(s)) return s;
  return std::nullopt;
}

int exit_code_for(RunState s) {
  switch (s) {
    case RunState::kSucceeded:
      return 0;
    case RunState::kPartial:
      return 3;
    case RunState::kCancelled:
    case RunState::kDetached:
      return 130;
    case RunState::kRunning:
    case RunState::kFailed:
      return 1;
  }
  return 1;
}

}  // namespace flowrun
