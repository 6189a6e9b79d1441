#pragma once
#include <string>

#include "engine/io/json.h"

namespace flowrun {

// Text form used when a value is interpolated into a string (`${{ }}`, a query parameter, an
// environment variable): null -> "", numbers without a trailing ".0" when integral, strings as
// they are, arrays and objects as JSON.
std::string interpolation_text(const Json& value);

}  // namespace flowrun
