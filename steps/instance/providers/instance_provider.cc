#include "steps/instance/providers/instance_provider.h"

namespace flowrun {

bool instance_stopped_for_good(const std::string& status) {
  // Vast's docs: once exited, unknown or offline, an instance never reaches running again.
  return status == "exited" || status == "stopped" || status == "offline" || status == "unknown" || status == "frozen";
}

std::string instance_label(const std::string& run_id, const std::string& own_path, const std::string& step_id) {
  // Everything up to the last ']' names the for_each item both steps belong to.
  auto bracket = own_path.rfind(']');
  std::string item = bracket == std::string::npos ? "" : own_path.substr(0, bracket + 1) + ":";
  return "flowrun:" + run_id + ":" + item + step_id;
}

}  // namespace flowrun
