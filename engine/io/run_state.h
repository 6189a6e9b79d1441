#pragma once
#include <optional>
#include <string_view>

namespace flowrun {

// How a run ended (or that it has not): the one vocabulary of the executor, the journal, the CLI
// and the docs. Exit codes follow it (see exit_code_for).
enum class RunState {
  kRunning,
  kSucceeded,
  kFailed,     // a step failed and nothing tolerated it, or a `finally` step failed
  kPartial,    // done, but tolerated items or continue_on_error steps failed
  kCancelled,  // stopped, and its `finally` steps ran (`flowrun cancel`, --on-interrupt cleanup)
  kDetached,   // stopped by a signal with its `finally` steps still owed: resume or cancel it
};

// How one step execution ended.
enum class StepState { kRunning, kSucceeded, kFailed, kPartial, kSkipped, kCancelled };

const char* to_string(RunState s);
const char* to_string(StepState s);
// The names as written by to_string; "interrupted", the old name of detached, is read too.
std::optional<RunState> parse_run_state(std::string_view name);
std::optional<StepState> parse_step_state(std::string_view name);

// 0 succeeded, 1 failed, 3 partial, 130 cancelled or detached by a signal (2, bad usage, is never
// a run's state).
int exit_code_for(RunState s);

}  // namespace flowrun
