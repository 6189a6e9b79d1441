#include "engine/expression.h"

#include <catch2/catch.hpp>

using namespace flowrun;

namespace {
Json scope() {
  return {{"inputs", {{"n", 3}, {"name", "cat"}, {"list", {1, 2, 3}}}},
          {"steps", {{"fetch", {{"outputs", {{"status", 200}, {"json", {{"ok", true}}}}}}}}},
          {"processing", 0},
          {"pending", 12}};
}
}  // namespace

TEST_CASE("a whole-value expression keeps its type", "[expression]") {
  ExpressionEvaluator e(scope());
  CHECK(e.resolve("${{ inputs.n * 2 }}") == 6);
  CHECK(e.resolve("  ${{ inputs.n / 2 }} ") == 1.5);
  CHECK(e.resolve("${{ inputs.list }}") == Json({1, 2, 3}));
  CHECK(e.resolve("${{ steps.fetch.outputs.json }}") == Json({{"ok", true}}));
  CHECK(e.resolve("${{ inputs.n > 2 }}") == true);
  CHECK(e.resolve("${{ inputs.missing }}").is_null());
}

TEST_CASE("embedded expressions are interpolated as text", "[expression]") {
  ExpressionEvaluator e(scope());
  CHECK(e.resolve("n=${{ inputs.n }}, half=${{ inputs.n / 2 }}, whole=${{ 4 / 2 }}") == "n=3, half=1.5, whole=2");
  CHECK(e.resolve("[${{ inputs.missing }}]") == "[]");
  CHECK(e.resolve("${{ inputs.name }}s and ${{ inputs.list }}") == "cats and [1,2,3]");
  CHECK(e.resolve("no expression here") == "no expression here");
}

TEST_CASE("values inside lists and maps are resolved", "[expression]") {
  ExpressionEvaluator e(scope());
  Json in = {{"a", "${{ inputs.n }}"}, {"b", {"x", "${{ inputs.name }}"}}, {"c", 5}};
  CHECK(e.resolve(in) == Json({{"a", 3}, {"b", {"x", "cat"}}, {"c", 5}}));
}

TEST_CASE("conditions use Lua truthiness, with or without ${{ }}", "[expression]") {
  ExpressionEvaluator e(scope());
  CHECK(e.condition("processing == 0 and pending > 0"));
  CHECK(e.condition("${{ processing == 0 }}"));
  CHECK_FALSE(e.condition("pending == 0"));
  CHECK(e.condition("0"));  // Lua: 0 is true
  CHECK_FALSE(e.condition("nil"));
  CHECK_FALSE(e.condition("inputs.missing"));
}

TEST_CASE("evaluation errors name the expression", "[expression]") {
  ExpressionEvaluator e(scope());
  try {
    e.evaluate("steps.nothere.outputs.x");
    FAIL("expected an error");
  } catch (const ExpressionError& err) {
    CHECK(std::string(err.what()) == "in ${{ steps.nothere.outputs.x }}: attempt to index a nil value (field 'nothere')");
  }
}

TEST_CASE("expressions run in the sandbox", "[expression]") {
  ExpressionEvaluator e(scope());
  CHECK(e.evaluate("os.execute").is_null());
  CHECK(e.evaluate("io").is_null());
  CHECK(e.evaluate("require").is_null());
  CHECK_THROWS_AS(e.evaluate("(function() while true do end end)()"), ExpressionError);
}

TEST_CASE("spans and syntax", "[expression]") {
  std::optional<size_t> open;
  auto spans = find_expressions("a ${{ x }} b ${{y}} c ${{ z", &open);
  REQUIRE(spans.size() == 2);
  CHECK(spans[0].code == "x");
  CHECK(spans[1].code == "y");
  REQUIRE(open);
  CHECK(*open == 22);
  CHECK(is_single_expression(" ${{ a.b }} "));
  CHECK_FALSE(is_single_expression("${{ a }}${{ b }}"));
  CHECK_FALSE(expression_syntax_error("a and b or not c").has_value());
  CHECK(expression_syntax_error("a &&").has_value());
}
