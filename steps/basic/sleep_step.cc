#include "engine/io/step_error.h"
#include "engine/step_api/step_context.h"
#include "steps/basic/basic_steps.h"

namespace flowrun {
namespace {

// Waits; cancellable within the cancel token's latency, bounded by the step's timeout.
class SleepStep final : public StepType {
 public:
  const StepInfo& info() const override {
    static const StepInfo info{.name = "sleep",
                               .summary = "Wait for a duration (cancellable)",
                               .params = {{"duration", ParamType::kDuration, true, "how long to wait, e.g. 30s"}}};
    return info;
  }
  Json run(StepContext& ctx) const override {
    auto d = ctx.duration_param("duration");
    if (!d) throw StepError::permanent("sleep needs a duration");
    ctx.sleep(*d);
    return {{"slept_ms", d->count()}};
  }
};

}  // namespace

std::unique_ptr<StepType> make_sleep_step() { return std::make_unique<SleepStep>(); }

}  // namespace flowrun
