#include "engine/io/json_parse.h"

#include "engine/io/step_error.h"

namespace flowrun {

int json_nesting_depth(std::string_view text, int stop_above) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > deepest) {
        deepest = depth;
        if (deepest > stop_above) return deepest;
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

void check_json_depth(std::string_view text, int max_depth) {
  if (json_nesting_depth(text, max_depth) > max_depth)
    throw StepError::permanent("JSON nested deeper than " + std::to_string(max_depth) + " levels");
}

Json parse_json_limited(std::string_view text, int max_depth) {
  check_json_depth(text, max_depth);
  return Json::parse(text.begin(), text.end(), nullptr, false);
}

}  // namespace flowrun
