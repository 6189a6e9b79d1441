#include "steps/instance/logs/instance_source.h"

#include <algorithm>

#include "engine/step_api/step_context.h"
#include "steps/instance/instance_steps.h"

namespace flowrun {
InstanceLogSource::InstanceLogSource(std::unique_ptr<InstanceProvider> provider, const Json& instance, int tail)
    : provider_(std::move(provider)),
      instance_(instance.is_object()
                    ? instance
                    : Json{{"id", instance.is_string() ? instance.get<std::string>() : instance.dump()}}),
      tail_(tail),
      follower_(LogFollower::memory_for_tail(tail)) {
  instance_["provider"] = provider_->name();
}

std::string InstanceLogSource::read(StepContext& ctx, const LineSink& take, const LinePrefilter&) {
  std::string id = instance_["id"];
  auto state = provider_->get(id, ctx);
  if (!state) return "instance " + id + " vanished";
  if (state->status != last_status_) {
    if (!last_status_.empty() || state->status != "running")
      ctx.log().info("instance " + id + " is " + state->status + (state->message.empty() ? "" : ": " + state->message));
    last_status_ = state->status;
    instance_["status"] = state->status;
  }
  bool dead = instance_stopped_for_good(state->status);
  if (state->status != "running" && !dead) return "";  // loading or rebooting: no log yet
  read_snapshot(follower_, provider_->logs(id, tail_, ctx), dead, tail_, ctx.log(), take);
  if (!dead) return "";
  return "instance " + id + " went " + state->status + (state->message.empty() ? "" : " (" + state->message + ")");
}

void InstanceLogSource::switch_to(const InstanceState& replacement) {
  Json spec = instance_.value("spec", Json());
  instance_ = instance_json(provider_->name(), replacement);
  if (!spec.is_null()) instance_["spec"] = spec;
  follower_ = LogFollower(LogFollower::memory_for_tail(tail_));
  last_status_.clear();
}

}  // namespace flowrun
