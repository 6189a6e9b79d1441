// `destroy`: stop paying for an instance. Idempotent (already gone is success) and stubborn:
// transient API trouble is retried with backoff for up to `give_up_after`, because an instance
// left running costs money until someone notices. Besides the instance it is given, it destroys
// every instance carrying the label of the provision step it names, which also covers an
// instance whose provision never finished (cancelled while loading, response lost).
#include <limits>
#include <set>

#include "engine/io/retry.h"
#include "engine/io/step_error.h"
#include "engine/step_api/step_context.h"
#include "steps/instance/instance_steps.h"

namespace flowrun {
namespace {

class DestroyStep final : public StepType {
 public:
  const StepInfo& info() const override {
    static const StepInfo info = [] {
      StepInfo i{.name = "destroy",
                 .summary = "Destroy an instance (already gone is success); normally in finally",
                 .params = provider_param_specs()};
      i.params.insert(
          i.params.end(),
          {{"instance", ParamType::kAny, false, "provision's outputs.instance, or an instance id"},
           {"provisioned_by", ParamType::kString, false, "id of the provision step: its label finds its instances"},
           {"label", ParamType::kString, false, "destroy every instance with this label"},
           {"give_up_after", ParamType::kDuration, false, "how long to keep retrying API trouble (default 10m)"}});
      return i;
    }();
    return info;
  }

  void validate(const Json& with, std::vector<std::pair<std::string, std::string>>& problems) const override {
    if (!with.contains("instance") && !with.contains("provisioned_by") && !with.contains("label"))
      problems.emplace_back("instance", "destroy needs instance, provisioned_by or label to know what to destroy");
    validate_provider_params(with, problems);
  }

  Json run(StepContext& ctx) const override {
    const Json& with = ctx.with();
    auto provider = provider_for(ctx);
    std::set<std::string> ids;
    std::set<std::string> labels;
    const Json instance = with.value("instance", Json());
    if (instance.is_object()) {
      if (instance.value("id", Json()).is_string()) ids.insert(instance["id"].get<std::string>());
      if (instance.value("label", Json()).is_string()) labels.insert(instance["label"].get<std::string>());
    } else if (instance.is_string() || instance.is_number()) {
      ids.insert(instance.is_string() ? instance.get<std::string>() : instance.dump());
    }
    if (std::string by = ctx.string_param("provisioned_by"); !by.empty())
      labels.insert(instance_label(ctx.run_id, ctx.path(), by));
    if (std::string label = ctx.string_param("label"); !label.empty()) labels.insert(label);

    // Transient API trouble only (a lost request arrives as transient): every other error is final.
    RetryPolicy stubborn{.attempts = std::numeric_limits<int>::max(),
                         .on = {RetryCondition::transient()},
                         .backoff = {std::chrono::seconds(2), 2.0, std::chrono::minutes(1), Jitter::kNone},
                         .max_elapsed = ctx.duration_param("give_up_after").value_or(std::chrono::minutes(10))};
    return retry(
        stubborn, ctx.clock(), ctx.cancel(), ctx.deadline(),
        [&](int) { return destroy_all(*provider, ids, labels, ctx); },
        [&](const FailedAttempt& f) {
          if (f.decision.retry)
            ctx.log().warn(std::string(f.error.what()) + "; trying again in " + format_duration(f.decision.delay));
        });
  }

 private:
  static Json destroy_all(InstanceProvider& provider, std::set<std::string> ids, const std::set<std::string>& labels,
                          StepContext& ctx) {
    for (const auto& label : labels)
      for (const auto& s : provider.find_by_label(label, ctx)) ids.insert(s.id);
    Json destroyed = Json::array(), gone = Json::array();
    for (const auto& id : ids) {
      if (provider.destroy(id, ctx)) {
        ctx.log().info("instance " + id + " destroyed");
        report_instance_destroyed(ctx, id);
        destroyed.push_back(id);
      } else {
        ctx.log().info("instance " + id + " was already gone");
        gone.push_back(id);
      }
    }
    if (ids.empty()) ctx.log().info("no instance to destroy");
    return {{"destroyed", destroyed}, {"already_gone", gone}};
  }
};

}  // namespace

std::unique_ptr<StepType> make_destroy_step() { return std::make_unique<DestroyStep>(); }

}  // namespace flowrun
