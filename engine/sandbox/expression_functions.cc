#include "engine/sandbox/expression_functions.h"

#include <algorithm>
#include <cmath>
#include <lua.hpp>
#include <stdexcept>

#include "engine/io/run_state.h"
#include "engine/sandbox/lua_state.h"

namespace flowrun {
namespace {

// A function's failure: thrown (never luaL_error) so that C++ locals are destroyed before the
// guard raises the Lua error.
struct FunctionError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// GitHub's text form of a value: nil is "", numbers without a trailing ".0", tables as JSON.
std::string text_of(lua_State* L, int index) {
  switch (lua_type(L, index)) {
    case LUA_TNIL:
    case LUA_TNONE:
      return "";
    case LUA_TBOOLEAN:
      return lua_toboolean(L, index) ? "true" : "false";
    case LUA_TNUMBER: {
      if (lua_isinteger(L, index)) return std::to_string(lua_tointeger(L, index));
      double d = lua_tonumber(L, index);
      if (std::abs(d) < 1e15 && d == std::trunc(d)) return std::to_string(static_cast<int64_t>(d));
      lua_pushvalue(L, index);
      std::string s = lua_tostring(L, -1);
      lua_pop(L, 1);
      return s;
    }
    case LUA_TSTRING: {
      size_t len = 0;
      const char* s = lua_tolstring(L, index, &len);
      return std::string(s, len);
    }
    case LUA_TTABLE:
      return lua_owner(L).to_json(index).dump();
    default:
      throw FunctionError(std::string("cannot use a ") + luaL_typename(L, index) + " as text");
  }
}

// GitHub's loose equality for list elements: texts case-insensitively, numbers by value.
bool loosely_equal(lua_State* L, int a, int b) {
  if (lua_type(L, a) == LUA_TSTRING && lua_type(L, b) == LUA_TSTRING)
    return lower(text_of(L, a)) == lower(text_of(L, b));
  if (lua_type(L, a) == LUA_TNUMBER && lua_type(L, b) == LUA_TNUMBER) return lua_tonumber(L, a) == lua_tonumber(L, b);
  return lua_rawequal(L, a, b) != 0;
}

int fn_contains(lua_State* L) {
  if (lua_type(L, 1) == LUA_TTABLE) {
    lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L, 1));
    for (lua_Integer i = 1; i <= n; ++i) {
      lua_rawgeti(L, 1, i);
      bool equal = loosely_equal(L, -1, 2);
      lua_pop(L, 1);
      if (equal) {
        lua_pushboolean(L, 1);
        return 1;
      }
    }
    lua_pushboolean(L, 0);
    return 1;
  }
  bool found = lower(text_of(L, 1)).find(lower(text_of(L, 2))) != std::string::npos;
  lua_pushboolean(L, found);
  return 1;
}

int fn_starts_with(lua_State* L) {
  std::string text = lower(text_of(L, 1)), prefix = lower(text_of(L, 2));
  lua_pushboolean(L, text.compare(0, prefix.size(), prefix) == 0 && text.size() >= prefix.size());
  return 1;
}

int fn_ends_with(lua_State* L) {
  std::string text = lower(text_of(L, 1)), suffix = lower(text_of(L, 2));
  lua_pushboolean(
      L, text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0);
  return 1;
}

int fn_format(lua_State* L) {
  if (lua_type(L, 1) != LUA_TSTRING) throw FunctionError("the first argument is the format text");
  const std::string fmt = lua_tostring(L, 1);
  const int given = lua_gettop(L) - 1;
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '{' && i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      ++i;
    } else if (c == '}' && i + 1 < fmt.size() && fmt[i + 1] == '}') {
      out += '}';
      ++i;
    } else if (c == '{') {
      size_t close = fmt.find('}', i);
      std::string digits = close == std::string::npos ? "" : fmt.substr(i + 1, close - i - 1);
      if (digits.empty() || digits.size() > 3 || digits.find_first_not_of("0123456789") != std::string::npos)
        throw FunctionError("'{' at " + std::to_string(i + 1) + " is not {N} (write '{{' for a brace)");
      int index = std::stoi(digits);
      if (index >= given) throw FunctionError("{" + digits + "} has no argument (" + std::to_string(given) + " given)");
      out += text_of(L, index + 2);
      i = close;
    } else if (c == '}') {
      throw FunctionError("'}' at " + std::to_string(i + 1) + " closes nothing (write '}}' for a brace)");
    } else {
      out += c;
    }
  }
  lua_pushlstring(L, out.data(), out.size());
  return 1;
}

int fn_to_json(lua_State* L) {
  std::string text = lua_owner(L).to_json(1).dump();
  lua_pushlstring(L, text.data(), text.size());
  return 1;
}

// The deepest nesting of [ and { outside strings: converting a deeper value to Lua would recurse
// once per level on the C stack.
size_t json_depth(std::string_view text) {
  size_t depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

int fn_from_json(lua_State* L) {
  if (lua_type(L, 1) != LUA_TSTRING)
    throw FunctionError(std::string("expected a JSON text, got ") + luaL_typename(L, 1));
  size_t len = 0;
  const char* s = lua_tolstring(L, 1, &len);
  if (json_depth({s, len}) > 64) throw FunctionError("the JSON text is nested more than 64 levels deep");
  Json value = Json::parse(s, s + len, nullptr, false);
  if (value.is_discarded()) throw FunctionError("not JSON: " + std::string(s, std::min<size_t>(len, 80)));
  lua_owner(L).push_json(value);
  return 1;
}

// `run.status` from the scope; running when the scope has no run (a probe's condition) or a
// status that is not a run state.
RunState run_status(lua_State* L) {
  RunState status = RunState::kRunning;
  lua_getglobal(L, "run");
  if (lua_type(L, -1) == LUA_TTABLE) {
    lua_getfield(L, -1, "status");
    if (lua_type(L, -1) == LUA_TSTRING) status = parse_run_state(lua_tostring(L, -1)).value_or(RunState::kRunning);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return status;
}

int fn_always(lua_State* L) {
  lua_pushboolean(L, 1);
  return 1;
}

int fn_success(lua_State* L) {
  const RunState s = run_status(L);
  lua_pushboolean(L, s == RunState::kRunning || s == RunState::kSucceeded || s == RunState::kPartial);
  return 1;
}

int fn_failure(lua_State* L) {
  lua_pushboolean(L, run_status(L) == RunState::kFailed);
  return 1;
}

int fn_cancelled(lua_State* L) {
  lua_pushboolean(L, run_status(L) == RunState::kCancelled);
  return 1;
}

// Turns a thrown error into a Lua error "name: message" once every C++ local is gone.
template <int (*F)(lua_State*)>
int guarded(lua_State* L) {
  bool failed = false;
  try {
    return F(L);
  } catch (const std::exception& e) {
    lua_pushfstring(L, "%s: %s", lua_tostring(L, lua_upvalueindex(1)), e.what());
    failed = true;
  }
  if (failed) return lua_error(L);
  return 0;
}

struct Function {
  const char* name;
  lua_CFunction fn;
};

constexpr Function kFunctions[] = {
    {"contains", guarded<fn_contains>},   {"startsWith", guarded<fn_starts_with>}, {"endsWith", guarded<fn_ends_with>},
    {"format", guarded<fn_format>},       {"toJSON", guarded<fn_to_json>},         {"fromJSON", guarded<fn_from_json>},
    {"always", guarded<fn_always>},       {"success", guarded<fn_success>},        {"failure", guarded<fn_failure>},
    {"cancelled", guarded<fn_cancelled>},
};

}  // namespace

const std::vector<std::string>& expression_function_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& f : kFunctions) out.push_back(f.name);
    return out;
  }();
  return names;
}

bool push_expression_function(lua_State* L, std::string_view name) {
  for (const auto& f : kFunctions) {
    if (name != f.name) continue;
    lua_pushstring(L, f.name);
    lua_pushcclosure(L, f.fn, 1);
    return true;
  }
  return false;
}

}  // namespace flowrun
