#include "engine/step_api/expressions.h"

#include "engine/io/step_error.h"
#include "engine/sandbox/expression.h"

namespace flowrun {

bool evaluate_condition(std::string_view condition, Json scope, const std::string& where) {
  try {
    return ExpressionEvaluator(std::move(scope)).condition(condition);
  } catch (const ExpressionError& e) {
    throw StepError::permanent(where + ": " + e.what());
  }
}

bool holds_expression(const Json& value) {
  return value.is_string() && value.get<std::string>().find("${{") != std::string::npos;
}

std::optional<std::string> condition_syntax_error(std::string_view condition) {
  return expression_syntax_error(condition);
}

}  // namespace flowrun
