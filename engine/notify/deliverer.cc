#include "engine/notify/deliverer.h"

#include <algorithm>
#include <set>

#include "engine/io/step_error.h"
#include "engine/notify/notify_events.h"

namespace flowrun {

Deliverer::Deliverer(Outbox& outbox, ChannelServices services, RandomSource& random,
                     std::function<void(const std::string&)> warn, std::function<int64_t()> now_ms)
    : outbox_(outbox), services_(services), random_(random), warn_(std::move(warn)), now_ms_(std::move(now_ms)) {}

int Deliverer::deliver_due() {
  std::vector<OutboxRow> rows;
  try {
    rows = outbox_.due(now_ms_());
  } catch (const std::exception& e) {
    warn_(std::string("notifications: cannot read the outbox: ") + e.what());
    return 0;
  }
  int settled = 0;
  std::set<int64_t> taken;
  for (const auto& row : rows) {
    if (taken.count(row.id)) continue;
    std::vector<OutboxRow> group;
    for (const auto& other : rows) {
      if (taken.count(other.id)) continue;
      const bool same = other.id == row.id || (is_item_event(row.event) && is_item_event(other.event) &&
                                               other.run_id == row.run_id && other.channel == row.channel);
      if (!same) continue;
      taken.insert(other.id);
      try {
        if (outbox_.claim(other.id, other.next_ms, now_ms_() + kLeaseMs)) group.push_back(other);
      } catch (const std::exception& e) {
        warn_(std::string("notifications: cannot update the outbox: ") + e.what());
      }
    }
    if (group.empty()) continue;
    try {
      settled += deliver_group(group);
    } catch (const std::exception& e) {
      warn_(std::string("notifications: cannot update the outbox: ") + e.what());
    }
  }
  return settled;
}

int Deliverer::deliver_group(const std::vector<OutboxRow>& group) {
  const OutboxRow& first = group.front();
  Json payload = first.payload;
  if (group.size() > 1) {
    Json events = Json::array();
    for (const auto& row : group) events.push_back(row.payload);
    payload = {{"delivery_key", first.run_id + "/digest#" + std::to_string(first.id) + "/" + first.channel},
               {"run", first.run_id},
               {"workflow", first.payload.value("workflow", "")},
               {"event", "digest"},
               {"path", ""},
               {"message", std::to_string(group.size()) + " item events"},
               {"events", events},
               {"at", events.back().value("at", "")}};
    if (first.payload.contains("link")) payload["link"] = first.payload["link"];
  }
  const std::string what = "notification " + payload.value("delivery_key", std::string()) + " (" + first.channel + ")";
  const std::string type = first.target.is_object() ? first.target.value("type", "") : "";
  const Channel* channel = channel_for(type);
  std::string error;
  bool permanent = false;
  std::optional<Duration> retry_after;
  if (!channel) {
    error = "no channel of type '" + type + "' in this flowrun";
    permanent = true;
  } else {
    try {
      channel->deliver(first.target, payload, services_);
      const int64_t now = now_ms_();
      for (const auto& row : group) outbox_.mark(row.id, group.size() > 1 ? "digested" : "sent", now);
      return static_cast<int>(group.size());
    } catch (const StepError& e) {
      if (e.kind() == ErrorKind::kCancelled) {  // this process is stopping: the row is due again at once
        for (const auto& row : group) outbox_.retry_later(row.id, row.attempts, now_ms_(), row.last_error);
        return 0;
      }
      error = e.what();
      permanent = e.kind() == ErrorKind::kPermanent;
      retry_after = e.retry_after();
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  try {
    const int attempts = first.attempts + 1;
    if (permanent || attempts >= kMaxAttempts) {
      for (const auto& row : group) outbox_.give_up(row.id, attempts, error);
      warn_(what + " not delivered after " + std::to_string(attempts) + " attempt(s), given up: " + error);
      return static_cast<int>(group.size());
    }
    Duration delay = backoff_delay(backoff_, attempts, random_);
    if (retry_after) delay = std::max(delay, std::min<Duration>(*retry_after, std::chrono::minutes(30)));
    const int64_t next = now_ms_() + delay.count();
    for (const auto& row : group) outbox_.retry_later(row.id, attempts, next, error);
  } catch (const std::exception& e) {
    warn_(std::string("notifications: cannot update the outbox: ") + e.what());
  }
  return 0;
}

}  // namespace flowrun
