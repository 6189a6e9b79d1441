#pragma once
// The instance steps (provision, wait-for-marker, destroy) and what they share.
#include <memory>
#include <optional>
#include <string>

#include "engine/io/duration.h"
#include "engine/io/json.h"
#include "engine/step_api/step_type.h"
#include "steps/instance/providers/registry.h"

namespace flowrun {

std::unique_ptr<StepType> make_provision_step();
std::unique_ptr<StepType> make_wait_for_marker_step();
std::unique_ptr<StepType> make_destroy_step();
std::unique_ptr<StepType> make_watch_instance_step();

// An instance as steps hand it on: {provider, id, label, gpu, status, price_per_hour}.
Json instance_json(const std::string& provider, const InstanceState& state);

// The instance_destroyed event at the step's path (`why`, when not empty, goes into the message):
// cost views stop counting the instance there.
void report_instance_destroyed(const StepContext& ctx, const std::string& id, const std::string& why = {});

// The live instance already carrying `label` (made before a crash, a retry, a lost response),
// if any. Dead ones and extra ones are destroyed: never two instances for one step.
std::optional<InstanceState> adopt_existing(InstanceProvider& provider, const std::string& label, StepContext& ctx);

// What provision asks for, read from its parameters, or from the copy of them it leaves in
// outputs.instance.spec (wait-for-marker re-provisions from that). Throws StepError::permanent
// for a bad value: a price cap is never silently dropped.
struct InstanceRequest {
  InstanceSpec spec;
  OfferFilter filter;
  int max_offers = 5;
  Duration ready_timeout{std::chrono::minutes(20)};
  Duration ready_interval{std::chrono::seconds(10)};
  Json params;  // the parameters it was read from, without provider, api_key and api_url
};
InstanceRequest instance_request(const Json& params, const std::string& label);

// Rents the cheapest offer matching `filter` for `spec`, falling over to the next of at most
// `max_offers` when one is gone. Throws StepError::transient when nothing matches.
InstanceState rent(InstanceProvider& provider, const OfferFilter& filter, const InstanceSpec& spec, int max_offers,
                   StepContext& ctx);

// Waits until the instance runs. An instance that dies, vanishes or is still loading after
// `timeout` is destroyed and the attempt fails as transient, so a retry rents another.
InstanceState wait_until_running(InstanceProvider& provider, InstanceState instance, StepContext& ctx, Duration timeout,
                                 Duration interval);

}  // namespace flowrun
