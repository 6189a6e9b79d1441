#include "engine/sandbox/expression.h"

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
    CHECK(std::string(err.what()) ==
          "in ${{ steps.nothere.outputs.x }}: attempt to index a nil value (field 'nothere')");
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

TEST_CASE("contains: substring of a text (case-insensitive) or element of a list", "[expression][functions]") {
  ExpressionEvaluator e(scope());
  CHECK(e.evaluate("contains('Hello World', 'world')") == true);
  CHECK(e.evaluate("contains('Hello', 'bye')") == false);
  CHECK(e.evaluate("contains(inputs.name, 'AT')") == true);
  CHECK(e.evaluate("contains(inputs.list, 2)") == true);
  CHECK(e.evaluate("contains(inputs.list, 4)") == false);
  CHECK(e.evaluate("contains(fromJSON('[\"Push\", \"pull_request\"]'), 'push')") == true);
  CHECK(e.evaluate("contains(fromJSON('[\"a\"]'), 'b')") == false);
  CHECK(e.evaluate("contains('abc 123', 12)") == true);  // numbers compare as their text
  CHECK(e.evaluate("contains(inputs.missing, 'x')") == false);
}

TEST_CASE("startsWith and endsWith ignore case", "[expression][functions]") {
  ExpressionEvaluator e(scope());
  CHECK(e.evaluate("startsWith('refs/heads/Main', 'REFS/')") == true);
  CHECK(e.evaluate("startsWith('ab', 'abc')") == false);
  CHECK(e.evaluate("endsWith('video.MP4', '.mp4')") == true);
  CHECK(e.evaluate("endsWith('mp4', 'video.mp4')") == false);
}

TEST_CASE("toJSON and fromJSON round-trip a value", "[expression][functions]") {
  ExpressionEvaluator e(scope());
  CHECK(e.evaluate("toJSON(steps.fetch.outputs)") == R"({"json":{"ok":true},"status":200})");
  CHECK(e.evaluate("toJSON(inputs.list)") == "[1,2,3]");
  CHECK(e.evaluate("toJSON('a\"b')") == R"("a\"b")");
  CHECK(e.evaluate("toJSON(nil)") == "null");
  CHECK(e.evaluate("fromJSON(toJSON(steps.fetch.outputs))") == Json({{"status", 200}, {"json", {{"ok", true}}}}));
  CHECK(e.evaluate("fromJSON('{\"a\": [1, 2.5, null]}').a[2]") == 2.5);
  CHECK(e.evaluate("fromJSON('[]')") == Json::array());
  try {
    e.evaluate("fromJSON('{nope')");
    FAIL("expected an error");
  } catch (const ExpressionError& err) {
    CHECK(std::string(err.what()) == "in ${{ fromJSON('{nope') }}: fromJSON: not JSON: {nope");
  }
  CHECK_THROWS_WITH(e.evaluate("toJSON(tostring)"), Catch::Contains("toJSON: cannot convert a Lua function to JSON"));
  CHECK_THROWS_WITH(e.evaluate("fromJSON(string.rep('[', 100000))"),
                    Catch::EndsWith("fromJSON: the JSON text is nested more than 64 levels deep"));
  CHECK(e.evaluate("fromJSON('[\"[[[[\"]')") == Json::array({"[[[["}));  // brackets inside strings do not count
}

TEST_CASE("format replaces {N} with the arguments", "[expression][functions]") {
  ExpressionEvaluator e(scope());
  CHECK(e.evaluate("format('{0} of {1}', 3, inputs.n * 2)") == "3 of 6");
  CHECK(e.evaluate("format('{1}-{0}-{1}', 'a', 'b')") == "b-a-b");
  CHECK(e.evaluate("format('{{literal}} {0}', inputs.list)") == "{literal} [1,2,3]");
  CHECK(e.evaluate("format('[{0}]', nil)") == "[]");
  CHECK_THROWS_WITH(e.evaluate("format('{2}', 'a')"), Catch::EndsWith("format: {2} has no argument (1 given)"));
  CHECK_THROWS_WITH(e.evaluate("format('{x}')"),
                    Catch::EndsWith("format: '{' at 1 is not {N} (write '{{' for a brace)"));
  CHECK_THROWS_WITH(e.evaluate("format('a } b')"),
                    Catch::EndsWith("format: '}' at 3 closes nothing (write '}}' for a brace)"));
}

TEST_CASE("status functions read run.status", "[expression][functions]") {
  auto with_status = [](const char* status) { return Json{{"run", {{"id", "r1"}, {"status", status}}}}; };
  struct Case {
    const char* status;
    bool success, failure, cancelled;
  };
  for (const Case& c : {Case{"running", true, false, false}, Case{"succeeded", true, false, false},
                        Case{"failed", false, true, false}, Case{"cancelled", false, false, true}}) {
    INFO(c.status);
    ExpressionEvaluator e(with_status(c.status));
    CHECK(e.condition("always()"));
    CHECK(e.condition("success()") == c.success);
    CHECK(e.condition("failure()") == c.failure);
    CHECK(e.condition("cancelled()") == c.cancelled);
    CHECK(e.condition("${{ failure() or cancelled() }}") == (c.failure || c.cancelled));
  }
  ExpressionEvaluator no_run(Json{{"observation", 1}});  // a probe's scope has no run: nothing failed
  CHECK(no_run.condition("success()"));
  CHECK_FALSE(no_run.condition("failure()"));
}

TEST_CASE("the scope wins over a function of the same name, the names are listed", "[expression][functions]") {
  ExpressionEvaluator e(Json{{"format", "mine"}});
  CHECK(e.evaluate("format") == "mine");
  const auto& callable = expression_callable_names();
  for (const char* name : {"contains", "toJSON", "always", "tostring", "pairs", "select", "type"})
    CHECK(std::find(callable.begin(), callable.end(), name) != callable.end());
  for (const char* name : {"string", "os", "dofile", "require"})
    CHECK(std::find(callable.begin(), callable.end(), name) == callable.end());
  const auto& builtin = expression_builtin_names();
  for (const char* name : {"string", "os", "math", "table", "utf8", "tostring", "cancelled"})
    CHECK(std::find(builtin.begin(), builtin.end(), name) != builtin.end());
}

TEST_CASE("hostile: reading one output of a huge step converts only that output", "[hostile][expression]") {
  // 20,000 items of 1 KB: 20 MB, past the 16 MiB expression memory limit as a whole.
  Json items = Json::array();
  const std::string padding(1000, 'p');
  for (int i = 0; i < 20000; ++i)
    items.push_back({{"item", "video-" + std::to_string(i)}, {"outputs", {{"p", padding}}}});
  Json scope = {{"steps", {{"each", {{"status", "succeeded"}, {"outputs", {{"items", items}, {"count", 20000}}}}}}}};
  ExpressionEvaluator ev(scope);
  CHECK(ev.evaluate("steps.each.outputs.count") == 20000);
  CHECK(ev.evaluate("steps.each.status") == "succeeded");
  // All of it is still past the expression memory limit (16 MiB), as a clear error.
  CHECK_THROWS_WITH(ev.evaluate("#steps.each.outputs.items"), Catch::Contains("memory"));
}

TEST_CASE("lazily converted step outputs still iterate and convert to JSON", "[expression]") {
  ExpressionEvaluator ev(scope());
  CHECK(ev.evaluate("toJSON(steps.fetch.outputs)") == R"({"json":{"ok":true},"status":200})");
  CHECK(ev.evaluate(
            "(function() local n = 0 for k, v in pairs(steps.fetch.outputs) do n = n + 1 end return n end)()") == 2);
  CHECK(ev.evaluate("steps.fetch.outputs.json.ok") == true);
  CHECK(ev.evaluate("steps.nothing == nil and steps.fetch.outputs.nothing == nil") == true);
}

TEST_CASE("an inner scope reads steps from its outer scopes, the nearest first", "[expression][scope]") {
  const Json outer = scope();  // steps.fetch
  Json middle = {{"inputs", outer["inputs"]}, {"steps", {{"list", {{"outputs", {{"n", 2}}}}}}}};
  link_outer_scope(middle, outer);
  Json inner = {{"item", "b"}, {"steps", {{"list", {{"outputs", {{"n", 9}}}}}, {"own", {{"status", "ok"}}}}}};
  link_outer_scope(inner, middle);
  CHECK(outer_scope(inner) == &middle);
  CHECK(outer_scope(middle) == &outer);
  CHECK(outer_scope(outer) == nullptr);

  ExpressionEvaluator e(inner);
  CHECK(e.evaluate("steps.fetch.outputs.status") == 200);  // two scopes out
  CHECK(e.evaluate("steps.list.outputs.n") == 9);          // the inner one hides the middle one's
  CHECK(e.evaluate("steps.own.status") == "ok");
  CHECK(e.evaluate("steps.missing") == nullptr);
  CHECK(e.evaluate("item") == "b");
  CHECK(e.evaluate("inputs") == outer["inputs"]);  // any name, like steps, from the nearest scope
  CHECK(e.evaluate("(function() local n = 0 for k in pairs(inputs) do n = n + 1 end return n end)()") ==
        static_cast<int>(outer["inputs"].size()));
  CHECK(e.evaluate("(function() local n = 0 for k in pairs(steps) do n = n + 1 end return n end)()") == 3);
  CHECK(e.evaluate("toJSON(steps)") == R"({"fetch":{"outputs":{"json":{"ok":true},"status":200}},)"
                                       R"("list":{"outputs":{"n":9}},"own":{"status":"ok"}})");
  // The link itself is not a name an expression sees, nor a global pairs lists.
  CHECK(e.evaluate("_G['\\1outer']") == nullptr);
  const char* const globals = "(function() local n = 0 for k in pairs(_G) do n = n + 1 end return n end)()";
  Json flat = outer;  // what pairs(_G) lists: each name once, as if the scopes were one
  flat.update(middle);
  flat.update(inner);
  flat.erase("\x01outer");
  CHECK(ExpressionEvaluator(inner).evaluate(globals) == ExpressionEvaluator(flat).evaluate(globals));
  CHECK(ExpressionEvaluator(inner).evaluate(globals) !=
        ExpressionEvaluator(Json{{"item", "b"}, {"steps", Json::object()}}).evaluate(globals));

  // Copies of a scope keep the link; only a binary value made by link_outer_scope is one.
  const Json copy = inner;
  CHECK(ExpressionEvaluator(copy).evaluate("steps.fetch.outputs.status") == 200);
  Json forged = {{"\x01outer", 12345}, {"steps", Json::object()}};
  CHECK(outer_scope(forged) == nullptr);
  CHECK(ExpressionEvaluator(forged).evaluate("steps.fetch") == nullptr);
}
