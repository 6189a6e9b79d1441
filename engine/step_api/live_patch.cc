#include "engine/step_api/live_patch.h"

#include <algorithm>

namespace flowrun {

Json log_tail_added(Json lines, size_t keep) {
  return {{kLogTailAdded, {{"lines", std::move(lines)}, {"keep", keep}}}};
}

void merge_live_patch(Json& state, const Json& patch, size_t most_lines) {
  if (!patch.is_object()) return;
  auto added = patch.find(kLogTailAdded);
  if (added == patch.end()) {
    state.merge_patch(patch);
    return;
  }
  Json rest = patch;
  rest.erase(kLogTailAdded);
  state.merge_patch(rest);
  if (!added->is_object()) return;
  auto lines = added->find("lines");
  if (lines == added->end() || !lines->is_array()) return;
  auto keep = added->find("keep");
  const size_t most =
      keep != added->end() && keep->is_number_unsigned() ? std::min(keep->get<size_t>(), most_lines) : most_lines;
  Json& tail = state["log_tail"];
  if (!tail.is_array()) tail = Json::array();
  for (const Json& line : *lines) tail.push_back(line);
  if (tail.size() > most) tail.erase(tail.begin(), tail.begin() + static_cast<std::ptrdiff_t>(tail.size() - most));
}

}  // namespace flowrun
