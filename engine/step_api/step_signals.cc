#include "engine/step_api/step_signals.h"

#include "engine/step_api/execution_recorder.h"
#include "engine/step_api/step_context.h"

namespace flowrun {

void report_event(const StepContext& ctx, const std::string& kind, const std::string& message, const Json& data) {
  ExecutionRecorder* recorder = ctx.services().recorder;
  if (!recorder) return;
  try {
    recorder->event(ctx.path(), kind, message, data);
  } catch (const std::exception& e) {
    ctx.log().debug("could not record the " + kind + " event: " + e.what());
  }
}

void report_live(const StepContext& ctx, const Json& patch) {
  ExecutionRecorder* recorder = ctx.services().recorder;
  if (!recorder) return;
  try {
    recorder->live(ctx.path(), patch);
  } catch (const std::exception& e) {
    ctx.log().debug(std::string("could not record the live state: ") + e.what());
  }
}

}  // namespace flowrun
