#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace flowrun {

// The event kinds a `notify:` route may name: the run's end (succeeded, failed, partial,
// cancelled; from the CLI) and the recorder's events (execution_recorder.h) worth telling.
const std::vector<std::string>& notify_event_names();
bool is_notify_event(std::string_view kind);
// An item event (item_failed, item_succeeded): these may be gathered into a digest.
bool is_item_event(std::string_view kind);

}  // namespace flowrun
