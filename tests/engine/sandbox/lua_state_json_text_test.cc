// push_json_text's simdjson path against the nlohmann SAX path it replaced: the same Lua values
// (types, integer or float, array markers, holes) and the same refusals, on generated, mutated and
// hostile texts.
#include <array>
#include <catch2/catch.hpp>
#include <cstring>
#include <lua.hpp>
#include <random>

#include "engine/io/step_error.h"
#include "engine/sandbox/lua_state.h"

using namespace flowrun;

namespace {

struct Outcome {
  bool ok = false;
  std::string error;  // what was thrown, if anything
};

Outcome push(LuaState& lua, std::string_view text, bool fast) {
  Outcome out;
  try {
    out.ok = fast ? lua.push_json_text(text) : lua.push_json_text_nlohmann(text);
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  return out;
}

// True when the values at a and b are the same Lua value, table contents and metatables included.
bool same(lua_State* L, int a, int b, int depth = 0) {
  a = lua_absindex(L, a);
  b = lua_absindex(L, b);
  if (lua_type(L, a) != lua_type(L, b) || depth > 600 || !lua_checkstack(L, 8)) return false;
  switch (lua_type(L, a)) {
    case LUA_TNIL:
      return true;
    case LUA_TBOOLEAN:
      return lua_toboolean(L, a) == lua_toboolean(L, b);
    case LUA_TNUMBER: {
      if (lua_isinteger(L, a) != lua_isinteger(L, b)) return false;
      if (lua_isinteger(L, a)) return lua_tointeger(L, a) == lua_tointeger(L, b);
      const double x = lua_tonumber(L, a), y = lua_tonumber(L, b);
      return std::memcmp(&x, &y, sizeof x) == 0;  // -0.0 is not 0.0
    }
    case LUA_TSTRING: {
      size_t n = 0, m = 0;
      const char* x = lua_tolstring(L, a, &n);
      const char* y = lua_tolstring(L, b, &m);
      return n == m && std::memcmp(x, y, n) == 0;
    }
    case LUA_TTABLE: {
      const bool ma = lua_getmetatable(L, a), mb = lua_getmetatable(L, b);
      bool ok = ma == mb && (!ma || lua_rawequal(L, -1, -2));
      lua_pop(L, int(ma) + int(mb));
      if (!ok || lua_rawlen(L, a) != lua_rawlen(L, b)) return false;
      size_t na = 0, nb = 0;
      for (lua_pushnil(L); lua_next(L, b); lua_pop(L, 1)) ++nb;
      for (lua_pushnil(L); lua_next(L, a); lua_pop(L, 1)) {
        ++na;
        lua_pushvalue(L, -2);
        lua_rawget(L, b);
        ok = same(L, -2, -1, depth + 1);
        lua_pop(L, 1);
        if (!ok) {
          lua_pop(L, 2);
          return false;
        }
      }
      return na == nb;
    }
    default:
      return false;
  }
}

// Parses with both paths in one state and checks they agree; returns whether the text was JSON.
bool agree(LuaState& lua, const std::string& text) {
  lua_State* L = lua.get();
  const int top = lua_gettop(L);
  const Outcome slow = push(lua, text, false);
  const Outcome fast = push(lua, text, true);
  INFO("text: " << text.substr(0, 200));
  CHECK(slow.ok == fast.ok);
  CHECK(slow.error == fast.error);
  if (slow.ok && fast.ok) {
    CHECK(lua_gettop(L) == top + 2);
    CHECK(same(L, -2, -1));
  } else {
    CHECK(lua_gettop(L) == top + int(slow.ok) + int(fast.ok));
  }
  lua_settop(L, top);
  return slow.ok;
}

std::string random_string(std::mt19937& rng) {
  static const std::vector<std::string> pieces = {"a",
                                                  "Z",
                                                  " ",
                                                  "\\\"",
                                                  "\\\\",
                                                  "\\/",
                                                  "\\n",
                                                  "\\t",
                                                  "\\u0000",
                                                  "\\u00e9",
                                                  "\\u20AC",
                                                  "é",
                                                  "€",
                                                  "😀",
                                                  "\\ud83d\\ude00",
                                                  "text",
                                                  "{",
                                                  "}",
                                                  "[",
                                                  "]",
                                                  ":",
                                                  ",",
                                                  "\\b",
                                                  "\\f",
                                                  "\\r",
                                                  "\\u001f",
                                                  "custom_id",
                                                  "\xf0\x9f\x98\x80",
                                                  "\\uFFFF"};
  std::string s;
  const int n = int(rng() % 8);
  for (int i = 0; i < n; ++i) s += pieces[rng() % pieces.size()];
  return s;
}

std::string random_number(std::mt19937& rng) {
  static const std::vector<std::string> numbers = {"0",
                                                   "-0",
                                                   "1",
                                                   "-1",
                                                   "0.0",
                                                   "-0.0",
                                                   "1.5",
                                                   "1e2",
                                                   "1E+2",
                                                   "1e-2",
                                                   "2.5e-308",
                                                   "1.7976931348623157e308",
                                                   "9223372036854775807",
                                                   "-9223372036854775808",
                                                   "9223372036854775808",
                                                   "18446744073709551615",
                                                   "18446744073709551616",
                                                   "-9223372036854775809",
                                                   "123456789012345678901234567890",
                                                   "4.9e-324",
                                                   "1e-400",
                                                   "0.1",
                                                   "3.141592653589793",
                                                   "100000000000000000000000.0",
                                                   "12345678901234567"};
  if (rng() % 2) return numbers[rng() % numbers.size()];
  return std::to_string(int64_t(rng()) - int64_t(1u << 31)) + (rng() % 3 ? "" : ".25");
}

std::string random_value(std::mt19937& rng, int depth) {
  const unsigned kind = depth > 6 ? rng() % 4 : rng() % 7;
  switch (kind) {
    case 0:
      return std::array<const char*, 3>{"null", "true", "false"}[rng() % 3];
    case 1:
      return random_number(rng);
    case 2:
    case 3:
      return "\"" + random_string(rng) + "\"";
    case 4:
    case 5: {
      std::string s = "{";
      const int n = int(rng() % 5);
      for (int i = 0; i < n; ++i) {
        if (i) s += rng() % 4 ? "," : " ,\n";
        s += "\"" + (rng() % 3 ? std::string(1, char('a' + rng() % 4)) : random_string(rng)) + "\":";
        s += random_value(rng, depth + 1);
      }
      return s + "}";
    }
    default: {
      std::string s = "[";
      const int n = int(rng() % 5);
      for (int i = 0; i < n; ++i) {
        if (i) s += ",";
        s += rng() % 4 ? random_value(rng, depth + 1) : "null";
      }
      return s + " ]";
    }
  }
}

}  // namespace

TEST_CASE("JSON text into Lua: simdjson and nlohmann agree on generated texts", "[lua][json]") {
  LuaState lua;
  std::mt19937 rng(18);
  int json = 0;
  for (int i = 0; i < 3000; ++i) json += agree(lua, random_value(rng, 0));
  CHECK(json > 2000);  // the generator makes mostly valid JSON: the comparison is not all refusals
}

TEST_CASE("hostile: JSON text into Lua, mutated texts are refused or accepted alike", "[lua][json][hostile]") {
  LuaState lua;
  std::mt19937 rng(1818);
  const std::string alphabet = std::string("\"\\u{}[],:0123456789.eE+-dDfFnt \t\r\n\x01\x1f\x7f") +
                               "\xff\xfe\xc0\xaf\xed\xa0\x80\xf4\x90\xe2\x82";
  int json = 0, refused = 0;
  for (int i = 0; i < 4000; ++i) {
    std::string text = random_value(rng, 0);
    const int edits = 1 + int(rng() % 3);
    for (int e = 0; e < edits && !text.empty(); ++e) {
      const size_t at = rng() % (text.size() + 1);
      const char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0:
          text.insert(text.begin() + long(at), c);
          break;
        case 1:
          if (at < text.size()) text.erase(at, 1);
          break;
        default:
          if (at < text.size()) text[at] = c;
      }
    }
    (agree(lua, text) ? json : refused) += 1;
  }
  CHECK(json > 200);
  CHECK(refused > 200);
}

TEST_CASE("hostile: JSON text into Lua, edge cases take the same path's answer", "[lua][json][hostile]") {
  LuaState lua;
  const std::vector<std::string> texts = {"",
                                          " ",
                                          "\t{}\r",
                                          "{}",
                                          "[]",
                                          "null",
                                          "nul",
                                          "tru",
                                          "NaN",
                                          "Infinity",
                                          "-",
                                          "01",
                                          "1.",
                                          ".5",
                                          "1e",
                                          "-0",
                                          "-0.0",
                                          "0e0",
                                          "1 2",
                                          "[1,]",
                                          "{,}",
                                          "{\"a\":1,}",
                                          "{\"a\" 1}",
                                          "[1,2",
                                          "\"abc",
                                          "\"a\\x\"",
                                          "\"\\ud800\"",
                                          "\"\\udc00\"",
                                          "\"\\ud800\\u0041\"",
                                          "\"\\ud83d\\ude00\"",
                                          "\"\\uD83D\\uDE00\"",
                                          "\"\\ud83d\"",
                                          "{\"k\\u0000ey\":1}",
                                          "{\"a\":1,\"a\":2}",
                                          "{\"a\":null}",
                                          "[null]",
                                          "[1,null,3]",
                                          "[null,null,3,null]",
                                          "\"\x01\"",
                                          "\"\x1f\"",
                                          "\"\x7f\"",
                                          "\"caf\xc3\xa9\"",
                                          "\"\xc0\xaf\"",
                                          "\"\xed\xa0\x80\"",
                                          "\"\xf4\x90\x80\x80\"",
                                          "\"\xff\"",
                                          "{\"bad\xff\":1}",
                                          "\xef\xbb\xbf{}",
                                          "\xef\xbb\xbf",
                                          "18446744073709551615",
                                          "18446744073709551616",
                                          "-9223372036854775809",
                                          "1e400",
                                          "-1e400",
                                          "1e-400",
                                          "1.7976931348623157e309",
                                          "[1e1000]",
                                          "{\"a\":[1,2,{\"b\":",
                                          "\"\\u00\"",
                                          "\"\\u004G\"",
                                          "true false",
                                          "{\"a\":1}x",
                                          "[\"\\\\ud800\"]",
                                          std::string("\"a\0b\"", 5),
                                          std::string("[1,\0]", 5),
                                          std::string("{\"a\":1}\0", 8)};
  for (const auto& text : texts) agree(lua, text);
  // Nesting at, just past and far past the limit (the depth error comes before any parse).
  for (int depth : {511, 512, 513, 600, 100000}) {
    agree(lua, std::string(size_t(depth), '[') + std::string(size_t(depth), ']'));
    agree(lua, std::string(size_t(depth), '['));
  }
  std::string objects;
  for (int i = 0; i < 512; ++i) objects += "{\"a\":";
  agree(lua, objects + "1" + std::string(512, '}'));
}

TEST_CASE("hostile: JSON text into Lua, huge texts past the fast path's bound agree too", "[lua][json][hostile]") {
  LuaState lua;
  const std::string big(3u << 20, 'x');
  agree(lua, "{\"text\":\"" + big + "\",\"n\":[1,2,null]}");                      // over 1 MiB: the SAX path
  agree(lua, "{\"text\":\"" + big.substr(0, (1u << 20) - 40) + "\",\"n\":[1]}");  // just under: simdjson
  agree(lua, "{\"text\":\"" + big + "\xff\"}");
  std::string many = "[";
  for (int i = 0; i < 60000; ++i) many += (i ? ",{\"i\":" : "{\"i\":") + std::to_string(i) + "}";
  agree(lua, many + "]");
  // A line after a huge one still parses (the per-thread parser is reused, not left broken).
  agree(lua, "{\"custom_id\":\"r-1\",\"result\":{\"type\":\"succeeded\"}}");
}
