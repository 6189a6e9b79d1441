#pragma once
// The bound on a step's outputs (`max_output:`).
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "engine/io/json.h"

namespace flowrun {

// A step's outputs may be at most this much JSON unless the step sets `max_output:`.
constexpr size_t kDefaultMaxOutput = size_t{16} << 20;

// The length of `value` as compact JSON text (strings counted as their bytes plus quotes,
// escapes ignored), counting stops once past `limit`: any result over `limit` means "too big".
size_t json_size_within(const Json& value, size_t limit);

// When the outputs are over `limit` bytes as JSON, empties them (so neither later steps nor
// the journal get them) and throws StepError::permanent "outputs are larger than max_output
// (16 MiB)...".
void check_output_size(Json& outputs, size_t limit);

}  // namespace flowrun
