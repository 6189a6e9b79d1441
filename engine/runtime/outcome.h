#pragma once
#include <string>
#include <utility>

#include "engine/io/run_state.h"

namespace flowrun {

// How a step, a sequence or a for_each item ended. kPartial: done, but tolerated failures below.
struct Outcome {
  StepState state = StepState::kSucceeded;
  std::string error;
  // A `finally` step failed at or below this point: no tolerance hides it.
  bool finally_failed = false;
  static Outcome ok() { return {}; }
  static Outcome failed(std::string e) { return {StepState::kFailed, std::move(e)}; }
  static Outcome cancelled(std::string e) { return {StepState::kCancelled, std::move(e)}; }
  bool is(StepState s) const { return state == s; }
};

}  // namespace flowrun
