// libFuzzer target: `${{ }}` expressions, found in a text and evaluated in the sandbox with a
// scope like a real step's. Errors in the expression are expected (ExpressionError); anything
// else escaping, a crash, a hang past the instruction limit or memory past the allocator limit
// is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/sandbox/expression.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const flowrun::Json scope = {
      {"inputs", {{"n", 3}, {"name", "video.mp4"}, {"list", {1, 2, 3}}}},
      {"steps", {{"fetch", {{"status", "succeeded"}, {"outputs", {{"json", {{"a", {{"b", nullptr}}}}}}}}}}},
      {"env", {{"HOME", "/root"}}},
      {"run", {{"id", "r"}, {"status", "running"}}}};
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::optional<size_t> unterminated;
  (void)flowrun::find_expressions(text, &unterminated);
  (void)flowrun::is_single_expression(text);
  (void)flowrun::expression_syntax_error(text);
  try {
    flowrun::ExpressionEvaluator evaluator(scope);
    (void)evaluator.resolve(flowrun::Json(text));
    (void)evaluator.condition(text);
  } catch (const flowrun::ExpressionError&) {
  }
  return 0;
}
