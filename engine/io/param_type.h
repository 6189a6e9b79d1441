#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/io/json.h"

namespace flowrun {

// The type of a step parameter or a workflow input. A closed set, so a step cannot declare a
// type the loader does not know how to check.
enum class ParamType { kString, kNumber, kInteger, kBool, kDuration, kList, kMap, kStringOrList, kAny };

// The name workflows, Lua scripts and `flowrun steps` use: "string", ..., "string|list", "any".
std::string to_string(ParamType type);

// The type called `name`, or nullopt for a name that is not one.
std::optional<ParamType> parse_param_type(std::string_view name);

// Every type's name, for "use one of" hints.
const std::vector<std::string>& param_type_names();

// Whether a literal value is of `type` (a duration is text such as 30s; a string is any scalar).
bool value_has_type(const Json& value, ParamType type);

}  // namespace flowrun
