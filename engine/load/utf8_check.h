#pragma once
#include <string>
#include <string_view>

#include "engine/model/diagnostics.h"

namespace flowrun {

// Adds a diagnostic at the first invalid byte of a workflow file's text, if there is one.
void check_valid_utf8(std::string_view text, const std::string& file, Diagnostics& diags);

}  // namespace flowrun
