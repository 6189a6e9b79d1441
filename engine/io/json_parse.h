#pragma once
// The one parse for JSON from outside (HTTP bodies, process output, Lua's flow.json.decode):
// nesting is bounded, because copying and converting a JSON value recurse once per level and
// 100,000 levels of `[` overflow the stack.
#include <string_view>

#include "engine/io/json.h"

namespace flowrun {

constexpr int kMaxJsonDepth = 512;

// Parses `text` like Json::parse(text, nullptr, false): a value that is not JSON comes back
// discarded (is_discarded()). Throws StepError (permanent) "JSON nested deeper than N levels"
// when arrays and objects nest deeper than `max_depth`, before anything is built.
Json parse_json_limited(std::string_view text, int max_depth = kMaxJsonDepth);

// The check parse_json_limited makes before parsing, for parsers that build something else
// (Lua values straight from the text): throws the same StepError past `max_depth`.
void check_json_depth(std::string_view text, int max_depth = kMaxJsonDepth);

// The deepest nesting of arrays and objects in `text`, counted without parsing it (brackets
// inside strings do not count); stops counting once it passes `stop_above`.
int json_nesting_depth(std::string_view text, int stop_above);

}  // namespace flowrun
