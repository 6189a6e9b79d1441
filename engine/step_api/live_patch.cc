#include "engine/step_api/live_patch.h"

#include <algorithm>

namespace flowrun {

Json log_tail_added(Json lines, size_t keep) {
  return {{kLogTailAdded, {{"lines", std::move(lines)}, {"keep", keep}}}};
}

namespace {

// RFC 7396 with the patch's values moved: a null deletes, an object merges into an object,
// anything else replaces.
void merge_moving(Json& target, Json&& patch) {
  if (!patch.is_object()) {
    target = std::move(patch);
    return;
  }
  if (!target.is_object()) target = Json::object();
  for (auto& [key, value] : patch.items()) {
    if (value.is_null())
      target.erase(key);
    else
      merge_moving(target[key], std::move(value));
  }
}

}  // namespace

void merge_live_patch(Json& state, const Json& patch, size_t most_lines) {
  merge_live_patch(state, Json(patch), most_lines);
}

void merge_live_patch(Json& state, Json&& patch, size_t most_lines) {
  if (!patch.is_object()) return;
  Json added;
  if (auto it = patch.find(kLogTailAdded); it != patch.end()) {
    added = std::move(*it);
    patch.erase(it);
  }
  merge_moving(state, std::move(patch));
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
