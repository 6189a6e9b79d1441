#include "steps/instance/instance_recovery.h"

#include "engine/step_api/step_context.h"
#include "steps/instance/instance_steps.h"
#include "steps/instance/log_capture.h"
#include "steps/instance/logs/instance_source.h"

namespace flowrun {

std::optional<std::string> InstanceRecovery::recover(InstanceLogSource& source, const std::string& why,
                                                     const std::string& last_line, StepContext& ctx) {
  InstanceProvider& provider = source.provider();
  // Perhaps an earlier attempt (before a crash) already replaced it: the label tells.
  std::string label = source.instance().value("label", "");
  std::string old_id = source.instance()["id"];
  if (!label.empty())
    for (const auto& s : provider.find_by_label(label, ctx))
      if (s.id != old_id && !instance_stopped_for_good(s.status)) {
        ctx.log().warn(why + "; continuing with instance " + s.id + ", which carries its label");
        source.switch_to(s);
        return std::nullopt;
      }
  std::string last = last_line.empty() ? "" : "; last log line: " + clip_line(last_line);
  if (recoveries_ >= max_recoveries_) return why + " before the marker" + last;
  const Json spec_json = source.instance().value("spec", Json());
  if (!spec_json.is_object()) return why + " before the marker, and no spec to re-provision from" + last;
  ++recoveries_;
  ctx.log().warn(why + " before the marker; re-provisioning (" + std::to_string(recoveries_) + " of " +
                 std::to_string(max_recoveries_) + ")");
  if (provider.destroy(old_id, ctx)) report_instance_destroyed(ctx, old_id, "lost before the marker");
  InstanceRequest req = instance_request(spec_json, label);
  InstanceState fresh = rent(provider, req.filter, req.spec, req.max_offers, ctx);
  fresh = wait_until_running(provider, fresh, ctx, req.ready_timeout, req.ready_interval);
  source.switch_to(fresh);
  return std::nullopt;
}

}  // namespace flowrun
