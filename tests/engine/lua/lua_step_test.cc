#include "engine/lua/lua_step.h"

#include <catch2/catch.hpp>

#include "engine/step_api/step_registry.h"
#include "support/harness.h"
#include "support/sim_server.h"

using namespace flowrun;
using flowrun::test::Harness;
using flowrun::test::TempDir;
using namespace std::chrono_literals;

TEST_CASE("lua: a script step gets its parameters and the flow API", "[steps][lua]") {
  TempDir dir;
  dir.write("count.lua", R"(
return {
  description = "counts words",
  params = {text = {type = "string", required = true}},
  run = function(with, flow)
    local n = 0
    for _ in string.gmatch(with.text, "%S+") do n = n + 1 end
    local r = flow.exec({"echo", "hi"})
    flow.log("counted " .. n .. " words")
    local decoded = flow.json.decode('{"a": [1, 2]}')
    return {words = n, echoed = r.stdout, a2 = decoded.a[2], encoded = flow.json.encode({x = 1}), step = flow.step.id}
  end,
}
)");
  Harness h;
  REQUIRE(h.load("steps:\n  - {id: c, lua: " + dir.file("count.lua") + ", with: {text: 'a b  c'}}\n") == "");
  RunResult r = h.run();
  REQUIRE(r.status == RunState::kSucceeded);
  const Json& out = r.steps["c"]["outputs"];
  CHECK(out["words"] == 3);
  CHECK(out["echoed"] == "hi\n");
  CHECK(out["a2"] == 2);
  CHECK(out["encoded"] == "{\"x\":1}");
  CHECK(out["step"] == "c");
  CHECK(h.log_contains("INFO [c] counted 3 words"));
}

TEST_CASE("lua: declared parameters are validated when loading", "[steps][lua]") {
  TempDir dir;
  dir.write("p.lua", "return {params = {text = {type = 'string', required = true}}, run = function() end}");
  Harness h;
  std::string out = h.load("steps:\n  - {id: c, lua: " + dir.file("p.lua") + ", with: {txet: x}}\n");
  INFO(out);
  CHECK(out.find("unknown key 'txet' in `with` of step 'c' (lua)\n") != std::string::npos);
  CHECK(out.find("hint: did you mean 'text'?") != std::string::npos);
  CHECK(out.find("needs parameter 'text'") != std::string::npos);
}

TEST_CASE("lua: flow.fail sets the error kind, so the retry policy applies", "[steps][lua]") {
  TempDir dir;
  // Each attempt runs in a fresh sandbox, so the count lives in a file.
  dir.write("flaky.lua", R"L(
return function(with, flow)
  local r = flow.exec({"sh", "-c", "n=$(cat " .. with.counter .. " 2>/dev/null || echo 0); echo $((n+1)) > " .. with.counter .. "; cat " .. with.counter})
  local n = tonumber(r.stdout)
  if n < 3 then flow.fail("not yet (" .. n .. ")", "transient") end
  return {calls = n}
end
)L");
  Harness h;
  REQUIRE(h.load("steps:\n  - {id: f, lua: " + dir.file("flaky.lua") + ", with: {counter: " + dir.file("n") +
                 "}, retry: {attempts: 5, backoff: {initial: 1s}}}\n") == "");
  RunResult r = h.run();
  CHECK(r.status == RunState::kSucceeded);
  CHECK(r.steps["f"]["outputs"]["calls"] == 3);
  CHECK(h.log_contains("attempt 1/5 failed (transient): " + dir.file("flaky.lua") + ":5: not yet (1); retrying in 1s"));
}

TEST_CASE("lua: errors report script:line", "[steps][lua]") {
  TempDir dir;
  dir.write("bad.lua", "return function(with, flow)\n  local t = nil\n  return t.x\nend\n");
  Harness h;
  REQUIRE(h.load("steps:\n  - {id: b, lua: " + dir.file("bad.lua") + "}\n") == "");
  RunResult r = h.run();
  CHECK(r.status == RunState::kFailed);
  CHECK(r.error.find("bad.lua:3: attempt to index a nil value (local 't')") != std::string::npos);
}

TEST_CASE("lua: a sandbox escape attempt and an infinite loop both stop with a clear error", "[steps][lua][sandbox]") {
  TempDir dir;
  dir.write("escape.lua", "return function(with, flow)\n  os.execute('touch " + dir.file("escaped") + "')\nend\n");
  dir.write("spin.lua", "return function(with, flow)\n  while true do pcall(function() end) end\nend\n");
  Harness h;
  REQUIRE(h.load("steps:\n  - {id: e, lua: " + dir.file("escape.lua") +
                 ", continue_on_error: true}\n"
                 "  - {id: s, lua: " +
                 dir.file("spin.lua") + "}\n") == "");
  RunResult r = h.run();
  CHECK(r.steps["e"]["error"].get<std::string>().find("escape.lua:2: attempt to call a nil value (field 'execute')") !=
        std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.file("escaped")));
  CHECK(r.steps["s"]["error"] == "instruction limit exceeded (200000000 instructions) (permanent)");
}

TEST_CASE("lua: flow.sleep honours cancellation", "[steps][lua]") {
  TempDir dir;
  dir.write("nap.lua", "return function(with, flow) flow.sleep('1h') end\n");
  Harness h;
  h.use_real_clock = true;
  REQUIRE(h.load("steps:\n  - {id: n, lua: " + dir.file("nap.lua") + "}\n") == "");
  Duration took{0};
  RunResult r = h.run_cancelled_after(100ms, &took);
  CHECK(took < 1s);
  CHECK(r.status == RunState::kCancelled);
}

TEST_CASE("lua: a poller keeps its state between polls", "[steps][lua][poll]") {
  TempDir dir;
  dir.write("count_to.lua", R"(
return {
  params = {target = "integer", interval = "duration"},
  poll = function(with, flow, state)
    state.n = (state.n or 0) + 1
    if state.n >= with.target then return "done", {n = state.n} end
    return "pending"
  end,
}
)");
  Harness h;
  REQUIRE(h.load("steps:\n  - {id: p, lua: " + dir.file("count_to.lua") + ", with: {target: 4, interval: 1m}}\n") ==
          "");
  RunResult r = h.run();
  REQUIRE(r.status == RunState::kSucceeded);
  CHECK(r.steps["p"]["outputs"]["n"] == 4);
  CHECK(h.virtual_clock.sleeps() == std::vector<Duration>{1min, 1min, 1min});
}

TEST_CASE("lua: scripts/steps/NAME.lua becomes step type NAME", "[steps][lua]") {
  TempDir dir;
  std::filesystem::create_directories(dir.file("scripts/steps"));
  dir.write("scripts/steps/greet.lua",
            "return {description = 'says hello', params = {who = 'string'}, "
            "run = function(with) return {text = 'hello ' .. with.who} end}");
  dir.write("scripts/steps/exec.lua", "return function() end");  // cannot shadow a built-in
  Harness h;
  Diagnostics problems;
  register_lua_step_types(h.registry, dir.file("scripts/steps"), dir.path(), problems);
  REQUIRE(problems.size() == 1);
  CHECK(problems.items()[0].loc.file == "scripts/steps/exec.lua");
  CHECK(problems.items()[0].message == "scripts/steps/exec.lua: step type 'exec' is registered twice");
  REQUIRE(h.registry.find("greet"));
  CHECK(h.registry.find("greet")->info().summary == "says hello");
  REQUIRE(h.load("steps:\n  - {id: g, type: greet, with: {who: world}}\n") == "");
  CHECK(h.run().steps["g"]["outputs"]["text"] == "hello world");
}

TEST_CASE("lua: a script declaring a parameter type that does not exist is refused", "[steps][lua][params]") {
  TempDir dir;
  dir.write("flag.lua", "return {params = {on = {type = 'boolean'}, n = 'integr'}, run = function() end}");
  auto diags = flowrun::test::diagnostics_of("steps:\n  - {id: f, lua: " + dir.file("flag.lua") + "}\n");
  REQUIRE(diags.size() == 1);
  // Parameters come in name order: n before on.
  CHECK(diags[0].find("cannot load Lua script: parameter 'n' has unknown type 'integr' (did you mean 'integer'?)") !=
        std::string::npos);
  dir.write("flag.lua", "return {params = {on = {type = 'boolean'}}, run = function() end}");
  diags = flowrun::test::diagnostics_of("steps:\n  - {id: f, lua: " + dir.file("flag.lua") + "}\n");
  REQUIRE(diags.size() == 1);
  CHECK(diags[0].find("parameter 'on' has unknown type 'boolean' (use one of: string, number, integer, bool, "
                      "duration, list, map, string|list, any)") != std::string::npos);
}

TEST_CASE("lua: a script that cannot be loaded is one diagnostic where it is named", "[steps][lua]") {
  TempDir dir;
  dir.write("empty.lua", "return {description = 'no run'}");
  Diagnostics diagnostics;
  CHECK(load_lua_script_type(dir.file("empty.lua"), "empty.lua", Location{"w.yaml", 3, 9}, diagnostics) == nullptr);
  REQUIRE(diagnostics.size() == 1);
  CHECK(diagnostics.items()[0].loc.line == 3);
  CHECK(diagnostics.items()[0].message ==
        "cannot load Lua script: empty.lua: the script returns no run or poll function");
  Harness h;
  const std::string errors = h.load("steps:\n  - {id: e, lua: " + dir.file("empty.lua") + "}\n");
  CHECK(errors.find("test.yaml:2:") != std::string::npos);
  CHECK(errors.find("error: cannot load Lua script: " + dir.file("empty.lua") +
                    ": the script returns no run or poll function") != std::string::npos);
}
