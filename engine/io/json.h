#pragma once
// One value type crosses every boundary: step inputs and outputs, Lua tables, journal rows.
#include <nlohmann/json.hpp>

namespace flowrun {
using Json = nlohmann::json;
}  // namespace flowrun
