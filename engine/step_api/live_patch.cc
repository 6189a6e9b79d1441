#include "engine/step_api/live_patch.h"

#include <algorithm>

namespace flowrun {

Json log_tail_added(Json lines, size_t keep) {
  return {{kLogTailAdded, {{"lines", std::move(lines)}, {"keep", keep}}}};
}

void merge_live_patch(Json& state, Json patch, size_t most_lines) {
  if (!patch.is_object()) return;
  Json added;
  if (auto it = patch.find(kLogTailAdded); it != patch.end()) {
    added = std::move(*it);
    patch.erase(it);
  }
  state.merge_patch(patch);
  if (!added.is_object()) return;
  auto lines = added.find("lines");
  if (lines == added.end() || !lines->is_array()) return;
  auto keep = added.find("keep");
  const size_t most =
      keep != added.end() && keep->is_number_unsigned() ? std::min(keep->get<size_t>(), most_lines) : most_lines;
  Json& tail = state["log_tail"];
  if (!tail.is_array()) tail = Json::array();
  for (Json& line : *lines) tail.push_back(std::move(line));
  if (tail.size() > most) tail.erase(tail.begin(), tail.begin() + static_cast<std::ptrdiff_t>(tail.size() - most));
}

}  // namespace flowrun
