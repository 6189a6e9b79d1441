#pragma once
// How a step tells the run's recorder (ctx.services().recorder) something for the person who is
// not watching (an event) or for live views (a live patch). Best effort: without a recorder it
// does nothing, and a recorder that throws never fails the step.
#include <string>

#include "engine/io/json.h"

namespace flowrun {

class StepContext;

// An event at the step's own path (kinds: engine/step_api/execution_recorder.h).
void report_event(const StepContext& ctx, const std::string& kind, const std::string& message, const Json& data);

// A live patch (a JSON merge patch) at the step's own path.
void report_live(const StepContext& ctx, const Json& patch);

}  // namespace flowrun
