#include "engine/step_api/live_patch.h"

namespace flowrun {

Json log_tail_added(Json lines, size_t keep) {
  return {{kLogTailAdded, {{"lines", std::move(lines)}, {"keep", keep}}}};
}

void merge_live_patch(Json& state, const Json& patch) {
  if (!patch.is_object()) return;
  auto added = patch.find(kLogTailAdded);
  if (added == patch.end()) {
    state.merge_patch(patch);
    return;
  }
  Json rest = patch;
  rest.erase(kLogTailAdded);
  state.merge_patch(rest);
  const Json* lines = added->is_object() && added->contains("lines") ? &(*added)["lines"] : nullptr;
  if (!lines || !lines->is_array()) return;
  const Json keep = added->value("keep", Json());
  Json& tail = state["log_tail"];
  if (!tail.is_array()) tail = Json::array();
  for (const Json& line : *lines) tail.push_back(line);
  if (keep.is_number_unsigned() && tail.size() > keep.get<size_t>())
    tail.erase(tail.begin(), tail.begin() + static_cast<std::ptrdiff_t>(tail.size() - keep.get<size_t>()));
}

}  // namespace flowrun
