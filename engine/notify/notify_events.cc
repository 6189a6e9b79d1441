#include "engine/notify/notify_events.h"

#include <algorithm>

namespace flowrun {

const std::vector<std::string>& notify_event_names() {
  static const std::vector<std::string> names = {
      "succeeded",          "failed",           "partial",           "cancelled",    "item_failed",
      "item_succeeded",     "stalled",          "recovered",         "restart_loop", "instance_lost",
      "instance_recovered", "instance_started", "instance_destroyed"};
  return names;
}

bool is_notify_event(std::string_view kind) {
  const auto& names = notify_event_names();
  return std::find(names.begin(), names.end(), kind) != names.end();
}

bool is_item_event(std::string_view kind) { return kind == "item_failed" || kind == "item_succeeded"; }

}  // namespace flowrun
