#pragma once
#include <map>
#include <string>

#include "engine/io/json.h"
#include "engine/model/diagnostics.h"
#include "engine/model/workflow.h"

namespace flowrun {

// The run's `inputs`: each declared input's --set value (converted to the type of its default:
// "5" becomes 5 when the default is a number), else its default (${{ env.X }} allowed), else
// a diagnostic when required. An unknown --set name is a diagnostic too.
// kPlaceholder (a dry run): a required input without a value becomes the text "<NAME>", so a
// workflow can be looked at before anyone knows its values.
enum class MissingRequired { kError, kPlaceholder };
Json resolve_inputs(const Workflow& workflow, const std::map<std::string, std::string>& overrides,
                    Diagnostics& diagnostics, MissingRequired missing = MissingRequired::kError);

// The process environment as a JSON object.
Json environment_json();

}  // namespace flowrun
