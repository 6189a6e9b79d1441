#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "engine/io/json.h"
#include "engine/model/workflow.h"
#include "engine/notify/outbox.h"

namespace flowrun {

class Redactor;

// What channel settings may read, as the executor resolves `env:`: inputs, env (`env`, the
// process environment, plus the workflow's own `env:`) and the workflow's secrets.
Json channel_scope(const Workflow& workflow, const Json& inputs, Json env);
// A channel's settings with every ${{ }} resolved in `scope` (inputs, env, secrets, as the
// executor resolves `env:`), plus its `type`; null when the channel is off (its url or argv
// resolves to empty, or a setting does not resolve).
Json resolve_channel_target(const NotifyChannel& channel, const Json& scope);
// The texts of a resolved target that are secrets (url, password, argv, ...), for the redactor.
std::vector<std::string> target_secrets(const Json& target);

// Routes one run's events to its channels (`notify.on`) and writes each to the outbox: one row per
// event and channel, keyed RUN/PATH/EVENT[#n]/CHANNEL so that an event a resumed run emits again
// is not enqueued twice; `at_most` rows beyond the limit are kept as `suppressed`, and item
// events of a `digest` window share one due time. Thread-safe (the outbox is).
class Notifier {
 public:
  // `targets`: channel name -> resolved target (off channels absent). `redact` cleans payloads.
  Notifier(const NotifySpec& spec, std::map<std::string, Json> targets, Outbox& outbox, std::string run_id,
           std::string workflow, std::function<Json(const Json&)> redact, std::function<int64_t()> now_ms);

  // An event of the run (recorder events and the run's end alike); rows written before it returns.
  void notify(const std::string& path, const std::string& kind, const std::string& message, const Json& data);
  // Whether any route names `kind` to a channel that is on.
  bool routes(const std::string& kind) const;
  // The run ended: what a digest window holds is due now.
  void flush();
  // When set ("http://127.0.0.1:8080"), payloads carry link: BASE/runs/RUN.
  void set_link_base(std::string base) { link_base_ = std::move(base); }

 private:
  Json payload(const std::string& key, const std::string& path, const std::string& kind, const std::string& message,
               const Json& data) const;

  const NotifySpec& spec_;
  std::map<std::string, Json> targets_;
  Outbox& outbox_;
  std::string run_id_, workflow_;
  std::function<Json(const Json&)> redact_;
  std::function<int64_t()> now_ms_;
  std::string link_base_;
};

}  // namespace flowrun
