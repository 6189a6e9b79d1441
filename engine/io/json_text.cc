#include "engine/io/json_text.h"

#include <cmath>
#include <cstdint>

#include "engine/io/utf8.h"

namespace flowrun {

std::string interpolation_text(const Json& value) {
  if (value.is_null()) return "";
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_float()) {
    double d = value.get<double>();
    // Range first: converting a double beyond int64 is undefined behaviour (found by fuzzing).
    if (std::abs(d) < 1e15 && d == std::trunc(d)) return std::to_string(static_cast<int64_t>(d));
  }
  return dump_json(value);
}

}  // namespace flowrun
