#include "engine/io/run_state.h"

#include <catch2/catch.hpp>

#include "engine/sandbox/expression.h"

using namespace flowrun;

TEST_CASE("run and step states: parse reads what to_string writes, and the old name interrupted", "[run_state]") {
  for (RunState s : {RunState::kRunning, RunState::kSucceeded, RunState::kFailed, RunState::kPartial,
                     RunState::kCancelled, RunState::kDetached})
    CHECK(parse_run_state(to_string(s)) == s);
  for (StepState s : {StepState::kRunning, StepState::kSucceeded, StepState::kFailed, StepState::kPartial,
                      StepState::kSkipped, StepState::kCancelled})
    CHECK(parse_step_state(to_string(s)) == s);
  CHECK(parse_run_state("interrupted") == RunState::kDetached);
  CHECK(parse_step_state("interrupted") == std::nullopt);
  CHECK(parse_run_state("not_started") == std::nullopt);
}

// The sandbox sits below the model, so the status functions compare names of their own: this
// pins them to the names the executor writes into `run.status`.
TEST_CASE("the status functions read the names to_string writes into run.status", "[run_state]") {
  struct Case {
    StepState state;
    bool success, failure, cancelled;
  };
  for (const Case& c : {Case{StepState::kRunning, true, false, false}, Case{StepState::kSucceeded, true, false, false},
                        Case{StepState::kPartial, true, false, false}, Case{StepState::kFailed, false, true, false},
                        Case{StepState::kCancelled, false, false, true}}) {
    INFO(to_string(c.state));
    ExpressionEvaluator e(Json{{"run", {{"status", to_string(c.state)}}}});
    CHECK(e.condition("success()") == c.success);
    CHECK(e.condition("failure()") == c.failure);
    CHECK(e.condition("cancelled()") == c.cancelled);
  }
}
