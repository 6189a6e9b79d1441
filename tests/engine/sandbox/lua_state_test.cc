#include "engine/sandbox/lua_state.h"

#include <catch2/catch.hpp>
#include <lua.hpp>

#include "engine/io/json_parse.h"

using namespace flowrun;

namespace {
// Runs a chunk and returns its first result as JSON.
Json run(LuaState& lua, const std::string& code) {
  lua.load(code, "@scripts/test.lua");
  lua.protected_call(0, 1);
  Json v = lua.to_json(-1);
  lua_pop(lua.get(), 1);
  return v;
}

std::string error_of(LuaState& lua, const std::string& code) {
  try {
    run(lua, code);
  } catch (const LuaError& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST_CASE("dangerous functions are absent from the sandbox", "[lua][sandbox]") {
  LuaState lua;
  CHECK(run(lua, "return os.execute == nil and os.exit == nil and os.getenv == nil and os.remove == nil") == true);
  CHECK(run(lua, "return io == nil and require == nil and package == nil and debug == nil") == true);
  CHECK(run(lua, "return dofile == nil and loadfile == nil and collectgarbage == nil and string.dump == nil") == true);
  CHECK(run(lua, "return type(os.time()) == 'number' and type(string.format) == 'function'") == true);
}

TEST_CASE("escape attempts fail with a clear error", "[lua][sandbox]") {
  LuaState lua;
  CHECK(error_of(lua, "os.execute('touch /tmp/flowrun-escaped')") ==
        "scripts/test.lua:1: attempt to call a nil value (field 'execute')");
  CHECK(error_of(lua, "return io.open('/etc/passwd')") ==
        "scripts/test.lua:1: attempt to index a nil value (global 'io')");
  // Bytecode: load() accepts text only. "\27Lua" is the binary chunk signature.
  CHECK(run(lua, "local f, err = load('\\27Lua...'); return err") == "attempt to load a binary chunk (mode is 't')");
  // A loaded chunk sees the same restricted globals.
  CHECK(run(lua, "return load('return os.execute')() == nil") == true);
  // The package.loaded table (which still holds the full os library) is unreachable.
  CHECK(run(lua, "return debug == nil and getmetatable('').__index.dump == nil") == true);
}

TEST_CASE("an infinite loop is stopped by the instruction limit, and pcall cannot swallow it", "[lua][sandbox]") {
  LuaState lua(LuaLimits{64u << 20, 1'000'000});
  CHECK(error_of(lua, "while true do end") == "instruction limit exceeded (1000000 instructions)");
  LuaState again(LuaLimits{64u << 20, 1'000'000});
  CHECK(error_of(again, "while true do pcall(function() while true do end end) end") ==
        "instruction limit exceeded (1000000 instructions)");
}

TEST_CASE("a memory bomb is stopped by the memory limit", "[lua][sandbox]") {
  LuaState lua(LuaLimits{8u << 20, 100'000'000});
  CHECK(error_of(lua, "local t = {} for i = 1, 1e8 do t[i] = string.rep('x', 1000) .. i end") ==
        "memory limit exceeded (8 MiB)");
  CHECK(lua.memory_used() < (8u << 20));
}

TEST_CASE("cancellation and deadlines stop a running script", "[lua][sandbox]") {
  CancelToken cancel;
  cancel.cancel("stop");
  LuaState lua;
  lua.set_interrupts(&cancel, nullptr, std::nullopt);
  try {
    run(lua, "while true do end");
    FAIL("not stopped");
  } catch (const LuaError& e) {
    CHECK(e.kind() == ErrorKind::kCancelled);
  }
  VirtualClock clock;
  CancelToken never;
  LuaState timed;
  timed.set_interrupts(&never, &clock, clock.now());
  try {
    run(timed, "while true do end");
    FAIL("not stopped");
  } catch (const LuaError& e) {
    CHECK(e.kind() == ErrorKind::kTimeout);
    CHECK(std::string(e.what()) == "timed out");
  }
}

TEST_CASE("errors carry script and line", "[lua]") {
  LuaState lua;
  CHECK(error_of(lua, "local x = 1\nlocal y = nil\nreturn y.field") ==
        "scripts/test.lua:3: attempt to index a nil value (local 'y')");
  CHECK(error_of(lua, "error('custom')") == "scripts/test.lua:1: custom");
  CHECK(error_of(lua, "return )") == "scripts/test.lua:1: unexpected symbol near ')'");
}

TEST_CASE("JSON round-trips through Lua tables", "[lua]") {
  LuaState lua;
  Json v = {{"a", 1}, {"b", {1, 2, 3}}, {"c", {{"d", "e"}}}, {"empty_list", Json::array()}, {"f", 1.5}, {"t", true}};
  lua.push_json(v);
  Json back = lua.to_json(-1);
  lua_pop(lua.get(), 1);
  CHECK(back == v);
  CHECK(run(lua, "return {}") == Json::object());
  CHECK(run(lua, "return {10, 20}") == Json({10, 20}));
  CHECK(run(lua, "return {[1]='a', x='b'}") == Json({{"1", "a"}, {"x", "b"}}));
  CHECK_THROWS_AS(run(lua, "return {f = tostring}"), LuaError);
}

TEST_CASE("JSON text parsed straight into Lua gives what pushing the parsed Json gives", "[lua]") {
  LuaState lua;
  const std::vector<std::string> texts = {
      R"({"a":1,"b":[1,null,3],"c":{"d":"e","n":null},"e":[],"f":1.5,"g":-7,"h":18446744073709551615,"t":true})",
      R"([{"x":[[]]},"s",false])",
      R"("just a string")",
      "42",
      "null",
      R"({"dup":1,"dup":2,"gone":3,"gone":null})"};
  for (const auto& text : texts) {
    lua.push_json(parse_json_limited(text));
    const Json via_json = lua.to_json(-1);
    lua_pop(lua.get(), 1);
    REQUIRE(lua.push_json_text(text));
    CHECK(lua.to_json(-1) == via_json);
    lua_pop(lua.get(), 1);
  }
  const int top = lua_gettop(lua.get());
  CHECK_FALSE(lua.push_json_text(R"({"a":[1,2,{"b":)"));
  CHECK_FALSE(lua.push_json_text("{\"bad\xff\":1}"));
  CHECK(lua_gettop(lua.get()) == top);  // nothing left behind by a failed parse
  CHECK_THROWS_WITH(lua.push_json_text(std::string(600, '[')), "JSON nested deeper than 512 levels");
  CHECK(lua_gettop(lua.get()) == top);
}

TEST_CASE("hostile: Lua strings that are not UTF-8 convert to valid JSON, keys included", "[hostile][lua]") {
  LuaState lua;
  Json v = run(lua, "return {s = string.char(99, 97, 102, 233), [string.char(255)] = 1}");
  CHECK(v["s"] == "caf\xEF\xBF\xBD");
  CHECK(v.contains("\xEF\xBF\xBD"));
  CHECK_NOTHROW(v.dump());
}

TEST_CASE("hostile: a Lua table nested 100,000 deep is a clear error, not a stack overflow", "[hostile][lua]") {
  LuaState lua;
  CHECK(error_of(lua, "local t = {} for i = 1, 100000 do t = {t} end return t") ==
        "value nested too deeply to convert to JSON");
  // A cycle is the same error.
  CHECK(error_of(lua, "local t = {} t.self = t return t") == "value nested too deeply to convert to JSON");
  // A JSON value deeper than the parse limit is refused on the way into Lua as well.
  Json deep = Json::array();
  for (int i = 0; i < 600; ++i) {
    Json outer = Json::array();
    outer.push_back(std::move(deep));
    deep = std::move(outer);
  }
  const int top = lua_gettop(lua.get());
  CHECK_THROWS_WITH(lua.push_json(deep), "value nested deeper than 512 levels to convert to Lua");
  CHECK(lua_gettop(lua.get()) == top);  // the stack is balanced after the error
  // The state still works after both errors.
  CHECK(run(lua, "return {a = {b = {c = 1}}}")["a"]["b"]["c"] == 1);
}

// Runs `code` with the instruction limit of a step and a cancel token that is already set:
// whatever C loop or handler the script is in, it must stop.
static std::string stopped_by_cancel(const std::string& code) {
  CancelToken cancel;
  cancel.cancel("stop");
  LuaState lua(LuaLimits{64u << 20, 1'000'000'000'000});
  lua.set_interrupts(&cancel, nullptr, std::nullopt);
  return error_of(lua, code);
}

TEST_CASE("hostile: an xpcall message handler that loops is stopped", "[hostile][lua]") {
  LuaState lua(LuaLimits{64u << 20, 1'000'000});
  CHECK(error_of(lua, "return xpcall(function() while true do end end, function() while true do end end)") ==
        "instruction limit exceeded (1000000 instructions)");
  CHECK(stopped_by_cancel("xpcall(function() while true do end end, function() while true do end end)") == "cancelled");
  LuaState tail(LuaLimits{64u << 20, 1'000'000});  // a caught kill as the chunk's last act
  CHECK(error_of(tail, "return pcall(function() while true do end end)") ==
        "instruction limit exceeded (1000000 instructions)");
  LuaState plain;  // an ordinary handler still works
  CHECK(run(plain,
            "local ok, e = xpcall(function() error('x', 0) end, function(m) return 'got ' .. m end) "
            "return {ok, e}") == Json::array({false, "got x"}));
}

TEST_CASE("hostile: __gc metamethods are refused", "[hostile][lua]") {
  LuaState lua;
  CHECK(error_of(lua, "setmetatable({}, {__gc = function() while true do end end})") ==
        "scripts/test.lua:1: __gc metamethods are not allowed in the sandbox");
  CHECK(run(lua, "return getmetatable(setmetatable({}, {__index = {a = 1}})).__index.a") == 1);
  // The marker metatable of arrays is hidden, so nobody can add a __gc to it.
  lua.set_global("arr", Json::array({1}));
  CHECK(run(lua, "return getmetatable(arr)") == false);
  CHECK(error_of(lua, "getmetatable(arr).__gc = tostring") == "scripts/test.lua:1: attempt to index a boolean value");
}

TEST_CASE("hostile: Lua pattern backtracking counts against the limits", "[hostile][lua]") {
  for (const char* call : {"s:find('.-.-.-.-.-.-b')", "s:match('.-.-.-.-.-.-b')", "s:gsub('.-.-.-.-.-.-b', '')",
                           "(function() for m in s:gmatch('.-.-.-.-.-.-b') do end end)()", "s:find('a*a*a*a*a*a*b')",
                           "s:gsub('%b()', '')"}) {
    INFO(call);
    LuaState lua(LuaLimits{64u << 20, 5'000'000});
    CHECK(error_of(lua, std::string("local s = ('a'):rep(5000) .. ('('):rep(5000) return ") + call) ==
          "instruction limit exceeded (5000000 instructions)");
    CHECK(stopped_by_cancel(std::string("local s = ('a'):rep(5000) .. ('('):rep(5000) return ") + call) == "cancelled");
  }
  LuaState lua;  // Lua's own behaviour otherwise
  CHECK(run(lua, "return {('key=value'):match('(%w+)=(%w+)')}") == Json::array({"key", "value"}));
  CHECK(run(lua, "return {('hello world'):find('o w')}") == Json::array({5, 7}));
  CHECK(run(lua, "return {('a,b,,c'):gsub(',', ';')}") == Json::array({"a;b;;c", 3}));
  CHECK(run(lua, "local t = {} for w in ('one two three'):gmatch('%a+') do t[#t+1] = w end return t") ==
        Json::array({"one", "two", "three"}));
  CHECK(run(lua, "return (' x '):match('^%s*(.-)%s*$')") == "x");
}

TEST_CASE("hostile: table.move and string.rep cannot loop in C past the limits", "[hostile][lua]") {
  LuaState lua(LuaLimits{64u << 20, 5'000'000});
  CHECK(error_of(lua, "table.move({}, 1, 1e14, 1, {})") == "instruction limit exceeded (5000000 instructions)");
  CHECK(stopped_by_cancel("table.move({}, 1, 1e14, 1, {})") == "cancelled");
  LuaState rep;
  CHECK(run(rep, "return ('').rep('', 1e15) .. '|' .. ('ab'):rep(3, ',')") == "|ab,ab,ab");
  CHECK(error_of(rep, "return ('x'):rep(1e9)") == "memory limit exceeded (64 MiB)");
  CHECK(error_of(rep, "return ('x'):rep(1e12)") == "resulting string too large");
  CHECK(run(rep, "return table.concat(table.move({1, 2, 3}, 1, 3, 2), ',')") == "1,1,2,3");
}

TEST_CASE("hostile: print is not in the sandbox", "[hostile][lua]") {
  LuaState lua;
  CHECK(run(lua, "return print == nil") == true);
}

TEST_CASE("hostile: to_json stops at its byte limit", "[hostile][lua]") {
  LuaState lua;
  lua.load("local big = ('x'):rep(8 << 20) local t = {} for i = 1, 100 do t[i] = big end return t",
           "@scripts/test.lua");
  lua.protected_call(0, 1);
  const size_t before = lua.memory_used();
  CHECK_THROWS_AS(lua.to_json(-1, size_t{16} << 20), JsonTooLarge);
  CHECK_THROWS_WITH(lua.to_json(-1, size_t{16} << 20), "value larger than 16 MiB as JSON");
  CHECK(lua.memory_used() == before);
  CHECK(lua_gettop(lua.get()) == 1);
  lua_pop(lua.get(), 1);
  // A table doubled 40 times is 2^40 leaves as JSON: stopped by the default (memory) limit.
  lua.load("local t = {'x'} for i = 1, 40 do t = {t, t} end return t", "@scripts/test.lua");
  lua.protected_call(0, 1);
  CHECK_THROWS_AS(lua.to_json(-1), JsonTooLarge);
  lua_pop(lua.get(), 1);
  CHECK(run(lua, "return {n = 1, [2.5] = 'f', [3] = 'i'}") == Json{{"n", 1}, {"2.5", "f"}, {"3", "i"}});
}

TEST_CASE("hostile: running out of Lua memory outside a protected call is an error, not abort()", "[hostile][lua]") {
  LuaState lua(LuaLimits{1u << 20, 1'000'000});
  CHECK_THROWS_AS(lua.push_json(Json{{"big", std::string(2u << 20, 'x')}}), LuaError);
  CHECK_THROWS_WITH(lua.push_json(Json::array({std::string(2u << 20, 'x')})), Catch::Contains("not enough memory"));
  CHECK(run(lua, "return 1 + 1") == 2);  // the state is still usable
}

TEST_CASE("hostile: a table thrown as an error is read raw, and is permanent", "[hostile][lua]") {
  LuaState lua(LuaLimits{64u << 20, 1'000'000});
  try {
    run(lua, "error(setmetatable({}, {__index = function() while true do end end}))");
    FAIL("no error");
  } catch (const LuaError& e) {
    CHECK(std::string(e.what()) == "error (the error object is a table, not a string)");
    CHECK(e.kind() == ErrorKind::kPermanent);
  }
}
