#pragma once
// Expressions as step types use them: a condition over what the step observed (a probe's or a
// health check's `until`), and its syntax checked when the workflow loads. The language lives in
// engine/sandbox, which step types cannot include; this is all of it they see.
#include <optional>
#include <string>
#include <string_view>

#include "engine/io/json.h"

namespace flowrun {

// Whether `condition` holds with the keys of `scope` as globals (Lua truthiness: all but nil and
// false). A condition that does not evaluate throws StepError::permanent "<where>: <why>".
bool evaluate_condition(std::string_view condition, Json scope, const std::string& where);

// Whether a parameter as written still holds `${{ }}`: validation at load time leaves such a
// value to run time, when it is resolved.
bool holds_expression(const Json& value);

// Why `condition` does not parse as an expression, or nullopt when it does.
std::optional<std::string> condition_syntax_error(std::string_view condition);

}  // namespace flowrun
