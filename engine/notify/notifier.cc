#include "engine/notify/notifier.h"

#include <cstdlib>
#include <ctime>
#include <set>

#include "engine/io/redactor.h"
#include "engine/io/utc_time.h"
#include "engine/notify/notify_events.h"
#include "engine/sandbox/expression.h"

namespace flowrun {
namespace {

bool run_event(const std::string& kind) {
  return kind == "succeeded" || kind == "failed" || kind == "partial" || kind == "cancelled";
}

// Run and item events are emitted again when a run is resumed: one key each, so the replay is
// not enqueued twice. The others happen anew each time: numbered.
bool repeats(const std::string& kind) { return !run_event(kind) && !is_item_event(kind); }

void collect_strings(const Json& value, std::vector<std::string>& out) {
  if (value.is_string()) {
    if (!value.get_ref<const std::string&>().empty()) out.push_back(value.get<std::string>());
  } else if (value.is_array() || value.is_object()) {
    for (const auto& item : value) collect_strings(item, out);
  }
}

}  // namespace

Json channel_scope(const Workflow& workflow, const Json& inputs, Json env) {
  Json scope = {{"inputs", inputs}, {"env", std::move(env)}};
  Json secrets = Json::object();
  for (const auto& name : workflow.secrets)
    if (const char* v = std::getenv(name.c_str())) secrets[name] = v;
  scope["secrets"] = secrets;
  for (const auto& [name, value] : workflow.env.items()) {
    try {
      scope["env"][name] = interpolation_text(ExpressionEvaluator(scope).resolve(value));
    } catch (const ExpressionError&) {
      // The run reports it; a channel reading it is off.
    }
  }
  return scope;
}

Json resolve_channel_target(const NotifyChannel& channel, const Json& scope) {
  Json target;
  try {
    target = ExpressionEvaluator(scope).resolve(channel.settings);
  } catch (const ExpressionError&) {
    return nullptr;
  }
  if (!target.is_object()) return nullptr;
  // url (webhook, slack) or argv (exec) or to (email): empty means the channel is off.
  for (const char* key : {"url", "argv", "to"}) {
    if (!target.contains(key)) continue;
    const Json& v = target[key];
    if (v.is_null() || (v.is_string() && v.get_ref<const std::string&>().empty()) || (v.is_array() && v.empty()))
      return nullptr;
  }
  target["type"] = channel.type;
  return target;
}

std::vector<std::string> target_secrets(const Json& target) {
  std::vector<std::string> out;
  for (const auto& [key, value] : target.items()) {
    if (key == "type" || key == "timeout" || key == "port") continue;
    if (key == "argv" && value.is_array()) {
      // The program name is not a secret; its arguments (tokens, addresses) may be.
      for (size_t i = 1; i < value.size(); ++i) collect_strings(value[i], out);
      continue;
    }
    collect_strings(value, out);
  }
  return out;
}

Notifier::Notifier(const NotifySpec& spec, std::map<std::string, Json> targets, Outbox& outbox, std::string run_id,
                   std::string workflow, std::function<Json(const Json&)> redact, std::function<int64_t()> now_ms)
    : spec_(spec),
      targets_(std::move(targets)),
      outbox_(outbox),
      run_id_(std::move(run_id)),
      workflow_(std::move(workflow)),
      redact_(std::move(redact)),
      now_ms_(std::move(now_ms)) {}

bool Notifier::routes(const std::string& kind) const {
  for (const auto& route : spec_.routes) {
    if (std::find(route.events.begin(), route.events.end(), kind) == route.events.end()) continue;
    for (const auto& channel : route.to)
      if (targets_.count(channel)) return true;
  }
  return false;
}

Json Notifier::payload(const std::string& key, const std::string& path, const std::string& kind,
                       const std::string& message, const Json& data) const {
  Json p = {{"delivery_key", key},
            {"run", run_id_},
            {"workflow", workflow_},
            {"event", kind},
            {"path", path},
            {"message", message},
            {"error", ""},
            {"outputs", Json::object()},
            {"at", rfc3339_ms(now_ms_())}};
  if (data.is_object()) {
    if (data.contains("error") && data["error"].is_string()) p["error"] = data["error"];
    if (data.contains("outputs") && !data["outputs"].is_null()) p["outputs"] = data["outputs"];
    Json rest = data;
    rest.erase("error");
    rest.erase("outputs");
    if (!rest.empty()) p["data"] = rest;
  }
  if (!link_base_.empty()) p["link"] = link_base_ + "/runs/" + run_id_;
  return redact_(p);
}

void Notifier::notify(const std::string& path, const std::string& kind, const std::string& message, const Json& data) {
  std::set<std::string> done;  // a channel named by two routes for one event gets it once
  for (const auto& route : spec_.routes) {
    if (std::find(route.events.begin(), route.events.end(), kind) == route.events.end()) continue;
    for (const auto& channel : route.to) {
      auto target = targets_.find(channel);
      if (target == targets_.end() || !done.insert(channel).second) continue;
      const int64_t now = now_ms_();
      OutboxRow row;
      row.run_id = run_id_;
      row.channel = channel;
      row.event = kind;
      row.path = path;
      row.target = target->second;
      row.created_ms = now;
      row.next_ms = now;
      std::string key = run_id_ + (path.empty() ? "" : "/" + path) + "/" + kind;
      if (repeats(kind)) {
        const int n = outbox_.count_of(run_id_, path, kind, channel);
        if (n > 0) key += "#" + std::to_string(n + 1);
      }
      row.delivery_key = key + "/" + channel;
      if (route.at_most && outbox_.recent(channel, kind, now - route.at_most->per.count()) >= route.at_most->count)
        row.status = "suppressed";
      if (is_item_event(kind) && spec_.digest > Duration::zero()) {
        const int64_t window = outbox_.open_window(run_id_, channel, now);
        row.next_ms = window ? window : now + spec_.digest.count();
      }
      row.payload = payload(row.delivery_key, path, kind, message, data);
      outbox_.enqueue(row);
    }
  }
}

void Notifier::flush() { outbox_.due_by(run_id_, now_ms_()); }

}  // namespace flowrun
