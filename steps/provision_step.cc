// `provision`: rent the cheapest matching instance, start the job on it, wait until it runs.
// Re-entry safe: the instance is labelled with the run and the step, and an attempt first looks
// for an instance with its label, so a crash, a retry or a resume never rents a second one.
#include <chrono>

#include "engine/step_context.h"
#include "engine/step_error.h"
#include "engine/workflow.h"
#include "steps/instance_provider.h"
#include "steps/instance_steps.h"

namespace flowrun {
namespace {

std::string money(double dollars) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "$%.3f/h", dollars);
  return buf;
}

class ProvisionStep final : public StepType {
 public:
  const StepInfo& info() const override {
    static const StepInfo info = [] {
      StepInfo i{.name = "provision",
                 .summary = "Rent the cheapest matching instance, start a job on it, wait until it runs",
                 .params = provider_param_specs()};
      i.params.insert(i.params.end(),
                      {{"start_command", "string", true, "the shell script the instance runs (Vast's onstart)"},
                       {"image", "string", false, "container image (default vastai/base-image)"},
                       {"env", "map", false, "environment variables of the job"},
                       {"gpu_name", "string", false, "e.g. \"RTX 4090\"; default any"},
                       {"num_gpus", "integer", false, "default 1"},
                       {"max_price", "number", false, "dollars per hour, all costs included"},
                       {"min_reliability", "number", false, "0 to 1"},
                       {"disk", "number", false, "disk in GB (default 16)"},
                       {"max_offers", "integer", false, "how many offers to try when they vanish (default 5)"},
                       {"ready_timeout", "duration", false, "how long it may stay loading (default 20m)"},
                       {"ready_interval", "duration", false, "how often to check while loading (default 10s)"},
                       {"label", "string", false, "default flowrun:RUN:ITEM:STEP, which re-entry looks for"}});
      return i;
    }();
    return info;
  }

  Json run(StepContext& ctx) const override {
    const Json& with = ctx.with();
    auto provider = provider_for(ctx);
    InstanceSpec spec{.image = ctx.string_param("image", "vastai/base-image"),
                      .start_command = ctx.string_param("start_command"),
                      .env = {},
                      .disk_gb = ctx.number_param("disk").value_or(16),
                      .label = ctx.string_param("label", instance_label(ctx.run_id, ctx.path(), ctx.step().id))};
    const Json env = with.value("env", Json::object());
    for (const auto& [k, v] : env.items()) spec.env[k] = v.is_string() ? v.get<std::string>() : v.dump();
    OfferFilter filter{.gpu_name = ctx.string_param("gpu_name"),
                       .max_price = ctx.number_param("max_price"),
                       .min_reliability = ctx.number_param("min_reliability"),
                       .num_gpus = ctx.int_param("num_gpus", 1),
                       .disk_gb = spec.disk_gb};

    InstanceState instance;
    bool reused = false;
    if (auto found = adopt_existing(*provider, spec.label, ctx)) {
      instance = *found;
      reused = true;
    } else {
      instance = rent(*provider, filter, spec, ctx.int_param("max_offers", 5), ctx);
    }
    const Duration ready_timeout = ctx.duration_param("ready_timeout").value_or(std::chrono::minutes(20));
    const Duration ready_interval = ctx.duration_param("ready_interval").value_or(std::chrono::seconds(10));
    instance = wait_until_running(*provider, instance, ctx, ready_timeout, ready_interval);

    Json out = instance_json(provider->name(), instance);
    out["spec"] = {{"image", spec.image},
                   {"start_command", spec.start_command},
                   {"env", env},
                   {"disk", spec.disk_gb},
                   {"ready_timeout", format_duration(ready_timeout)},
                   {"ready_interval", format_duration(ready_interval)},
                   {"filter", {{"gpu_name", filter.gpu_name}, {"num_gpus", filter.num_gpus}}}};
    if (filter.max_price) out["spec"]["filter"]["max_price"] = *filter.max_price;
    if (filter.min_reliability) out["spec"]["filter"]["min_reliability"] = *filter.min_reliability;
    return {{"instance", out},
            {"instance_id", instance.id},
            {"gpu", instance.gpu_name},
            {"price_per_hour", instance.price_per_hour},
            {"reused", reused},
            {"started_at", std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count()}};
  }

};

}  // namespace

  // An instance this step made before (a crash, a retry, a resume), if one is still usable.
// Dead ones are destroyed so they stop costing money; never more than one is kept.
std::optional<InstanceState> adopt_existing(InstanceProvider& provider, const std::string& label, StepContext& ctx) {
  std::optional<InstanceState> kept;
  for (const auto& s : provider.find_by_label(label, ctx)) {
    if (!kept && !instance_stopped_for_good(s.status)) {
      kept = s;
      ctx.log().info("found instance " + s.id + " (" + s.status + ") made before for this step; not renting another");
      continue;
    }
    ctx.log().warn("destroying instance " + s.id + " (" + s.status + ") left over with label " + label);
    provider.destroy(s.id, ctx);
  }
  return kept;
}

InstanceState rent(InstanceProvider& provider, const OfferFilter& filter, const InstanceSpec& spec, int max_offers,
                   StepContext& ctx) {
  auto offers = provider.search_offers(filter, ctx);
  if (offers.empty())
    throw StepError::transient("no offer matches gpu_name '" + filter.gpu_name + "'" +
                               (filter.max_price ? ", max_price " + money(*filter.max_price) : std::string()) +
                               "; offers come and go, so this is retried");
  int tried = 0;
  std::string last_reason;
  for (const auto& offer : offers) {
    if (tried++ == max_offers) break;
    try {
      ctx.log().info("renting offer " + offer.id + ": " + offer.gpu_name + " at " + money(offer.price_per_hour));
      std::string id = provider.create(offer, spec, ctx);
      ctx.log().info("instance " + id + " created (label " + spec.label + ")");
      return InstanceState{.id = id, .status = "loading", .message = "", .label = spec.label,
                           .gpu_name = offer.gpu_name, .price_per_hour = offer.price_per_hour};
    } catch (const OfferGone& gone) {
      ctx.log().warn(gone.message + "; trying the next offer");
      last_reason = gone.message;
    } catch (const StepError& e) {
      // The response may have been lost after the instance was made: look before renting again.
      if (e.kind() == ErrorKind::kTransient)
        if (auto made = adopt_existing(provider, spec.label, ctx)) return *made;
      throw;
    }
  }
  throw StepError::transient("every offer tried was gone (" + std::to_string(tried) + "); last: " + last_reason);
}

InstanceState wait_until_running(InstanceProvider& provider, InstanceState instance, StepContext& ctx,
                                 Duration timeout, Duration interval) {
  const TimePoint started = ctx.clock().now();
  std::string last_status;
  for (;;) {
    auto now = provider.get(instance.id, ctx);
    if (!now) throw StepError::transient("instance " + instance.id + " disappeared while starting");
    if (now->gpu_name.empty()) now->gpu_name = instance.gpu_name;
    if (now->price_per_hour == 0) now->price_per_hour = instance.price_per_hour;
    if (now->status == "running") {
      ctx.log().info("instance " + now->id + " is running (" + now->gpu_name + ", " + money(now->price_per_hour) + ")");
      return *now;
    }
    if (instance_stopped_for_good(now->status)) {
      provider.destroy(now->id, ctx);
      throw StepError::transient("instance " + now->id + " went " + now->status + " while starting (" +
                                 now->message + "); destroyed it");
    }
    if (now->status != last_status) {
      ctx.log().info("instance " + now->id + " is " + now->status + (now->message.empty() ? "" : ": " + now->message));
      last_status = now->status;
    }
    if (ctx.clock().now() - started >= timeout) {
      provider.destroy(now->id, ctx);
      throw StepError::transient("instance " + now->id + " was still " + now->status + " after " +
                                 format_duration(timeout) + "; destroyed it");
    }
    ctx.sleep(interval);
  }
}

Json instance_json(const std::string& provider, const InstanceState& s) {
  return {{"provider", provider}, {"id", s.id},       {"label", s.label},
          {"gpu", s.gpu_name},    {"status", s.status}, {"price_per_hour", s.price_per_hour}};
}

std::unique_ptr<StepType> make_provision_step() { return std::make_unique<ProvisionStep>(); }

}  // namespace flowrun
