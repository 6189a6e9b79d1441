// `provision`: rent the cheapest matching instance, start the job on it, wait until it runs.
// Re-entry safe: the instance is labelled with the run and the step, and an attempt first looks
// for an instance with its label, so a crash, a retry or a resume never rents a second one.
#include <chrono>

#include "engine/io/json_text.h"
#include "engine/io/step_error.h"
#include "engine/step_api/step_context.h"
#include "engine/step_api/step_signals.h"
#include "steps/instance/instance_steps.h"
#include "steps/instance/providers/instance_provider.h"

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
      i.params.insert(
          i.params.end(),
          {{"start_command", ParamType::kString, true, "the shell script the instance runs (Vast's onstart)"},
           {"image", ParamType::kString, false, "container image (default vastai/base-image)"},
           {"env", ParamType::kMap, false, "environment variables of the job"},
           {"gpu_name", ParamType::kString, false, "e.g. \"RTX 4090\"; default any"},
           {"num_gpus", ParamType::kInteger, false, "default 1"},
           {"max_price", ParamType::kNumber, false, "dollars per hour, all costs included"},
           {"min_reliability", ParamType::kNumber, false, "0 to 1"},
           {"disk", ParamType::kNumber, false, "disk in GB (default 16)"},
           {"max_offers", ParamType::kInteger, false, "how many offers to try when they vanish (default 5)"},
           {"ready_timeout", ParamType::kDuration, false, "how long it may stay loading (default 20m)"},
           {"ready_interval", ParamType::kDuration, false, "how often to check while loading (default 10s)"},
           {"label", ParamType::kString, false, "default flowrun:RUN:ITEM:STEP, which re-entry looks for"}});
      return i;
    }();
    return info;
  }

  void validate(const Json& with, std::vector<std::pair<std::string, std::string>>& problems) const override {
    validate_provider_params(with, problems);
  }

  Json run(StepContext& ctx) const override {
    auto provider = provider_for(ctx);
    InstanceRequest req =
        instance_request(ctx.with(), ctx.string_param("label", instance_label(ctx.run_id, ctx.path(), ctx.step_id())));
    InstanceState instance;
    bool reused = false;
    if (auto found = adopt_existing(*provider, req.spec.label, ctx)) {
      instance = *found;
      reused = true;
    } else {
      instance = rent(*provider, req.filter, req.spec, req.max_offers, ctx);
    }
    instance = wait_until_running(*provider, instance, ctx, req.ready_timeout, req.ready_interval);
    report_live(ctx, {{"instance", instance.id}, {"price_per_hour", instance.price_per_hour}});

    Json out = instance_json(provider->name(), instance);
    out["spec"] = req.params;
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
    if (provider.destroy(s.id, ctx)) report_instance_destroyed(ctx, s.id, "left over with label " + label);
  }
  return kept;
}

InstanceRequest instance_request(const Json& params, const std::string& label) {
  auto text = [&](const char* key, const std::string& fallback) {
    return params.contains(key) && !params[key].is_null() ? interpolation_text(params[key]) : fallback;
  };
  InstanceRequest req;
  req.spec = InstanceSpec{.image = text("image", "vastai/base-image"),
                          .start_command = text("start_command", ""),
                          .env = {},
                          .disk_gb = json_number(params, "disk").value_or(16),
                          .label = label};
  if (params.contains("env") && params["env"].is_object())
    for (const auto& [k, v] : params["env"].items()) req.spec.env[k] = interpolation_text(v);
  req.filter = OfferFilter{.gpu_name = text("gpu_name", ""),
                           .max_price = json_number(params, "max_price"),
                           .min_reliability = json_number(params, "min_reliability"),
                           .num_gpus = json_int(params, "num_gpus").value_or(1),
                           .disk_gb = req.spec.disk_gb};
  req.max_offers = json_int(params, "max_offers").value_or(req.max_offers);
  req.ready_timeout = json_duration(params, "ready_timeout").value_or(req.ready_timeout);
  req.ready_interval = json_duration(params, "ready_interval").value_or(req.ready_interval);
  // Where the instance is rented and with which key are the step's business, not the request's:
  // the key must not be copied into outputs (and so the journal).
  req.params = params.is_object() ? params : Json::object();
  for (const char* key : {"provider", "api_key", "api_url", "label"}) req.params.erase(key);
  return req;
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
    CreateResult created;
    try {
      ctx.log().info("renting offer " + offer.id + ": " + offer.gpu_name + " at " + money(offer.price_per_hour));
      created = provider.create(offer, spec, ctx);
    } catch (const StepError& e) {
      // The response may have been lost after the instance was made: look before renting again.
      if (e.kind() == ErrorKind::kTransient)
        if (auto made = adopt_existing(provider, spec.label, ctx)) return *made;
      throw;
    }
    if (const auto* gone = std::get_if<OfferGone>(&created)) {
      ctx.log().warn(gone->message + "; trying the next offer");
      last_reason = gone->message;
      continue;
    }
    const std::string& id = std::get<InstanceCreated>(created).id;
    ctx.log().info("instance " + id + " created (label " + spec.label + ")");
    // From here it costs money: what cost views and notifications count from.
    report_event(ctx, "instance_started",
                 "instance " + id + " rented: " + offer.gpu_name + " at " + money(offer.price_per_hour),
                 {{"instance", id}, {"price_per_hour", offer.price_per_hour}, {"gpu", offer.gpu_name}});
    report_live(ctx, {{"instance", id}, {"price_per_hour", offer.price_per_hour}});
    return InstanceState{.id = id,
                         .status = "loading",
                         .message = "",
                         .label = spec.label,
                         .gpu_name = offer.gpu_name,
                         .price_per_hour = offer.price_per_hour};
  }
  throw StepError::transient("every offer tried was gone (" + std::to_string(tried) + "); last: " + last_reason);
}

InstanceState wait_until_running(InstanceProvider& provider, InstanceState instance, StepContext& ctx, Duration timeout,
                                 Duration interval) {
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
      if (provider.destroy(now->id, ctx))
        report_instance_destroyed(ctx, now->id, "went " + now->status + " while starting");
      throw StepError::transient("instance " + now->id + " went " + now->status + " while starting (" + now->message +
                                 "); destroyed it");
    }
    if (now->status != last_status) {
      ctx.log().info("instance " + now->id + " is " + now->status + (now->message.empty() ? "" : ": " + now->message));
      last_status = now->status;
    }
    if (ctx.clock().now() - started >= timeout) {
      if (provider.destroy(now->id, ctx))
        report_instance_destroyed(ctx, now->id, "still " + now->status + " at the ready_timeout");
      throw StepError::transient("instance " + now->id + " was still " + now->status + " after " +
                                 format_duration(timeout) + "; destroyed it");
    }
    ctx.sleep(interval);
  }
}

void report_instance_destroyed(const StepContext& ctx, const std::string& id, const std::string& why) {
  report_event(ctx, "instance_destroyed", "instance " + id + " destroyed" + (why.empty() ? "" : " (" + why + ")"),
               {{"instance", id}});
}

Json instance_json(const std::string& provider, const InstanceState& s) {
  return {{"provider", provider}, {"id", s.id},         {"label", s.label},
          {"gpu", s.gpu_name},    {"status", s.status}, {"price_per_hour", s.price_per_hour}};
}

std::unique_ptr<StepType> make_provision_step() { return std::make_unique<ProvisionStep>(); }

}  // namespace flowrun
