#include "engine/sandbox/expression.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <lua.hpp>

#include "engine/io/utf8.h"
#include "engine/sandbox/expression_functions.h"
#include "engine/sandbox/lua_state.h"

namespace flowrun {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

constexpr LuaLimits kExpressionLimits{16u << 20, 10'000'000};

}  // namespace

std::vector<ExpressionSpan> find_expressions(std::string_view text, std::optional<size_t>* unterminated) {
  std::vector<ExpressionSpan> spans;
  size_t pos = 0;
  while ((pos = text.find("${{", pos)) != std::string_view::npos) {
    size_t close = text.find("}}", pos + 3);
    if (close == std::string_view::npos) {
      if (unterminated) *unterminated = pos;
      break;
    }
    spans.push_back({pos, close + 2, std::string(trim(text.substr(pos + 3, close - pos - 3)))});
    pos = close + 2;
  }
  return spans;
}

bool is_single_expression(std::string_view text) {
  auto trimmed = trim(text);
  auto spans = find_expressions(trimmed);
  return spans.size() == 1 && spans[0].begin == 0 && spans[0].end == trimmed.size();
}

std::optional<std::string> expression_syntax_error(std::string_view code) {
  // Compiling runs nothing and leaves nothing behind (the chunk is popped, the collector takes
  // it), so one state per thread checks every expression: a new sandbox for each cost validate
  // ~500,000 instructions an expression.
  thread_local LuaState lua(kExpressionLimits);
  std::string chunk = "return (" + std::string(code) + "\n)";
  try {
    lua.load(chunk, "=expression");
  } catch (const LuaError& e) {
    std::string msg = e.what();
    if (msg.rfind("expression:", 0) == 0) {  // "expression:2: unexpected symbol" -> "unexpected symbol"
      auto colon = msg.find(": ");
      if (colon != std::string::npos) msg = msg.substr(colon + 2);
    }
    return msg;
  }
  lua_pop(lua.get(), 1);
  return std::nullopt;
}

namespace {

// The scope is turned into Lua values lazily: a global when an expression first names it, and
// `steps`, each `steps.X` and each `steps.X.outputs` field by field when first used. A
// workflow's scope holds every earlier step's outputs; converting all of it for every step made
// a run of n steps cost n² (found by the step-overhead benchmark: 4,000 steps took 29 s), and
// converting a whole `steps.X` entry to read `steps.each.outputs.count` after a 100,000-item
// for_each ran into the expression memory limit.
// The `steps` objects of `scope` and of its outer scopes, innermost first.
std::vector<const Json*> steps_chain(const Json* scope) {
  std::vector<const Json*> chain;
  for (; scope; scope = outer_scope(*scope))
    if (auto steps = scope->find("steps"); steps != scope->end() && steps->is_object()) chain.push_back(&*steps);
  return chain;
}

// What toJSON(steps) converts in an inner scope: its steps and its outer scopes' (lua_state.h).
struct StepsParts final : LazyJsonParts {
  const Json* scope = nullptr;
  std::vector<const Json*> parts() const override { return steps_chain(scope); }
};

struct LazyScope {
  LuaState* lua = nullptr;
  const Json* scope = nullptr;
  StepsParts steps_parts;  // for the one `steps` table of an inner scope
};

// The link an inner scope keeps to its outer one (link_outer_scope): a binary value, which no
// workflow text can make (YAML and JSON give none), holding the outer scope's address.
constexpr std::string_view kOuterScopeKey = "\x01outer";
constexpr std::uint64_t kOuterScopeSubtype = 0x6f75;

// The `steps` entry named `key` in the nearest of `scope` and its outer scopes that has one.
const Json* find_step(const Json* scope, std::string_view key) {
  for (; scope; scope = outer_scope(*scope)) {
    auto steps = scope->find("steps");
    if (steps == scope->end() || !steps->is_object()) continue;
    if (auto it = steps->find(key); it != steps->end()) return &*it;
  }
  return nullptr;
}

// The levels of lazy tables: the globals, `steps`, `steps.X`, `steps.X.outputs`. A table of
// every level stands for a JSON object, except `steps`, which stands for the scope whose steps
// it shows: those of the scope and of its outer scopes.
enum Level : lua_Integer { kGlobals = 0, kSteps = 1, kStep = 2, kOutputs = 3 };

int lazy_index(lua_State* L);
int lazy_pairs(lua_State* L);

// Pushes a table whose fields come from `object` on first access, at `level`.
void push_lazy_table(lua_State* L, LazyScope* lazy, const Json* object, lua_Integer level) {
  lua_newtable(L);
  lua_createtable(L, 0, 3);
  lua_pushlightuserdata(L, lazy);
  lua_pushlightuserdata(L, const_cast<Json*>(object));
  lua_pushinteger(L, level);
  lua_pushcclosure(L, lazy_index, 3);
  lua_setfield(L, -2, "__index");
  lua_pushlightuserdata(L, lazy);
  lua_pushlightuserdata(L, const_cast<Json*>(object));
  lua_pushinteger(L, level);
  lua_pushcclosure(L, lazy_pairs, 3);
  lua_setfield(L, -2, "__pairs");
  if (level == kSteps && outer_scope(*object)) {
    // toJSON(steps) in an inner scope: the merge, made only when asked (lua_state.cc).
    lazy->steps_parts.scope = object;
    lua_pushlightuserdata(L, static_cast<LazyJsonParts*>(&lazy->steps_parts));
    lua_rawsetp(L, -2, &kLazyJsonPartsKey);
  } else if (level != kGlobals) {  // toJSON(steps.x.outputs) converts the JSON behind it (lua_state.cc)
    lua_pushlightuserdata(L, const_cast<Json*>(level == kSteps ? &object->at("steps") : object));
    lua_rawsetp(L, -2, &kLazyJsonKey);
  }
  // getmetatable(t) gives false: a script cannot reach the pointers above, nor change them.
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
}

// `env` holds what the workflow's and the steps' `env:` blocks set; any other name is read from
// the process's environment when an expression names it. A copy of the whole environment in
// every for_each item's scope cost each waiting monitor ~6 KiB (41 variables).
int process_env_index(lua_State* L) {
  if (lua_type(L, 2) != LUA_TSTRING) return 0;
  const char* value = std::getenv(lua_tostring(L, 2));
  if (!value) return 0;
  lua_pushstring(L, value);
  return 1;
}

// Pushes the Lua value of `value`, found under `key` of a lazy table at `level` that stands
// for `object`.
void push_entry(lua_State* L, LazyScope* lazy, const Json& object, const Json& value, std::string_view key,
                lua_Integer level) {
  if (level == kGlobals && key == "steps" && value.is_object()) {
    push_lazy_table(L, lazy, &object, kSteps);  // the scope, whose steps and outer steps it shows
    return;
  }
  if (value.is_object() && (level == kSteps || (level == kStep && key == "outputs"))) {
    push_lazy_table(L, lazy, &value, level + 1);
    return;
  }
  // A C++ exception must not cross the Lua frames above: keep its message, raise it as a Lua
  // error once the exception is gone.
  char message[200] = {0};
  try {
    lazy->lua->push_json(value);
    if (level == kGlobals && key == "env" && value.is_object()) {
      lua_createtable(L, 0, 1);
      lua_pushcfunction(L, process_env_index);
      lua_setfield(L, -2, "__index");
      lua_setmetatable(L, -2);
    }
    return;
  } catch (const std::bad_alloc&) {
    std::snprintf(message, sizeof message, "not enough memory");
  } catch (const std::exception& e) {
    std::snprintf(message, sizeof message, "%s", e.what());
  }
  luaL_error(L, "%s", message);
}

// __index of a lazy table: upvalues the LazyScope, the JSON object behind the table, its level.
// Converts the entry, caches it in the table, returns it.
int lazy_index(lua_State* L) {
  auto* lazy = static_cast<LazyScope*>(lua_touserdata(L, lua_upvalueindex(1)));
  const auto* object = static_cast<const Json*>(lua_touserdata(L, lua_upvalueindex(2)));
  const lua_Integer level = lua_tointeger(L, lua_upvalueindex(3));
  if (lua_type(L, 2) != LUA_TSTRING) return 0;
  // A view, not a std::string: a Lua error (memory) below would skip a destructor.
  size_t length = 0;
  const char* text = lua_tolstring(L, 2, &length);
  const std::string_view key(text, length);
  const Json* value = nullptr;
  if (level == kSteps) {
    value = find_step(object, key);
  } else if (level == kGlobals) {
    value = find_in_scope(*object, key);
  } else if (auto it = object->find(key); it != object->end()) {
    value = &*it;
  }
  if (!value) {
    // Not in the scope: maybe an expression function, installed on first use like the scope.
    if (level != kGlobals || !push_expression_function(L, text)) return 0;
  } else {
    push_entry(L, lazy, *object, *value, key, level);
  }
  lua_pushvalue(L, 2);
  lua_pushvalue(L, -2);
  lua_rawset(L, 1);
  return 1;
}

// __pairs of a lazy table: converts the fields not read yet, then iterates like pairs.
int lazy_pairs(lua_State* L) {
  auto* lazy = static_cast<LazyScope*>(lua_touserdata(L, lua_upvalueindex(1)));
  const auto* object = static_cast<const Json*>(lua_touserdata(L, lua_upvalueindex(2)));
  const lua_Integer level = lua_tointeger(L, lua_upvalueindex(3));
  luaL_checkstack(L, 4, "pairs");
  auto convert = [&](const Json& from) {  // the fields of `from` not read yet (an inner one first)
    for (auto it = from.begin(); it != from.end(); ++it) {
      const std::string& key = it.key();
      if (level == kGlobals && key == kOuterScopeKey) continue;
      lua_pushlstring(L, key.data(), key.size());
      if (lua_rawget(L, 1) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushlstring(L, key.data(), key.size());
        push_entry(L, lazy, *object, it.value(), key, level);
        lua_rawset(L, 1);
      } else {
        lua_pop(L, 1);
      }
    }
  };
  if (level == kSteps) {
    for (const Json* steps : steps_chain(object)) convert(*steps);
  } else if (level == kGlobals) {
    for (const Json* scope = object; scope; scope = outer_scope(*scope)) convert(*scope);
  } else {
    convert(*object);
  }
  lua_getglobal(L, "next");
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

}  // namespace

// The Lua state is made on the first expression: most steps have none, and a state with its
// sandbox costs more than the rest of a side-effect-free step (the step-overhead benchmark:
// ~200,000 instructions of ~700,000 a `set` step).
struct ExpressionEvaluator::Impl {
  std::optional<LuaState> lua;
  LazyScope lazy;
  const Json* scope = nullptr;
  Json owned;  // the scope, when it was handed over rather than lent

  LuaState& state() {
    if (!lua) {
      lua.emplace(kExpressionLimits);
      lazy.lua = &*lua;
      if (scope) install_scope();
    }
    return *lua;
  }

  void install_scope() {
    if (!scope->is_object()) return;
    lazy.scope = scope;
    lua_State* L = lua->get();
    lua_pushglobaltable(L);
    push_lazy_table(L, &lazy, scope, kGlobals);
    lua_getmetatable(L, -1);
    lua_setmetatable(L, -3);  // the globals get the lazy metatable; the table made for it goes
    lua_pop(L, 2);
  }
};

void link_outer_scope(Json& inner, const Json& outer) {
  const auto address = reinterpret_cast<std::uintptr_t>(&outer);
  std::vector<std::uint8_t> bytes(sizeof address);
  std::memcpy(bytes.data(), &address, sizeof address);
  inner[std::string(kOuterScopeKey)] = Json::binary(std::move(bytes), kOuterScopeSubtype);
}

const Json* outer_scope(const Json& scope) {
  if (!scope.is_object()) return nullptr;
  auto it = scope.find(kOuterScopeKey);
  if (it == scope.end() || !it->is_binary()) return nullptr;
  const Json::binary_t& bytes = it->get_binary();
  std::uintptr_t address = 0;
  if (!bytes.has_subtype() || bytes.subtype() != kOuterScopeSubtype || bytes.size() != sizeof address) return nullptr;
  std::memcpy(&address, bytes.data(), sizeof address);
  return reinterpret_cast<const Json*>(address);
}

const Json* find_in_scope(const Json& scope, std::string_view key) {
  if (key == kOuterScopeKey) return nullptr;
  for (const Json* s = &scope; s; s = outer_scope(*s))
    if (auto it = s->find(key); it != s->end()) return &*it;
  return nullptr;
}

Json& own_in_scope(Json& scope, std::string_view key) {
  if (auto it = scope.find(key); it != scope.end()) return *it;
  const Json* outer = outer_scope(scope);
  const Json* found = outer ? find_in_scope(*outer, key) : nullptr;
  return scope[std::string(key)] = found ? *found : Json();
}

ExpressionEvaluator::ExpressionEvaluator(Json&& scope) : impl_(std::make_unique<Impl>()) {
  impl_->owned = std::move(scope);
  impl_->scope = &impl_->owned;
}

ExpressionEvaluator::ExpressionEvaluator(const Json& scope) : impl_(std::make_unique<Impl>()) { impl_->scope = &scope; }

ExpressionEvaluator::~ExpressionEvaluator() = default;

Json ExpressionEvaluator::evaluate(std::string_view code) {
  std::string chunk = "return (" + std::string(code) + "\n)";
  try {
    LuaState& lua = impl_->state();
    lua.load(chunk, "=expression");
    lua.protected_call(0, 1);
    Json value = lua.to_json(-1);
    lua_pop(lua.get(), 1);
    return value;
  } catch (const LuaError& e) {
    std::string msg = e.what();
    if (msg.rfind("expression:", 0) == 0) {  // "expression:1: attempt to ..." -> "attempt to ..."
      auto colon = msg.find(": ");
      if (colon != std::string::npos) msg = msg.substr(colon + 2);
    }
    throw ExpressionError("in ${{ " + std::string(code) + " }}: " + msg);
  }
}

bool ExpressionEvaluator::condition(std::string_view code) {
  std::string_view c = trim(code);
  if (is_single_expression(c)) c = trim(c.substr(3, c.size() - 5));
  return is_truthy(evaluate(c));
}

Json ExpressionEvaluator::resolve(const Json& value) {
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    if (text.find("${{") == std::string::npos) return value;
    if (is_single_expression(text)) return evaluate(find_expressions(trim(text))[0].code);
    std::string out;
    size_t last = 0;
    for (const auto& span : find_expressions(text)) {
      out.append(text, last, span.begin - last);
      out += interpolation_text(evaluate(span.code));
      last = span.end;
    }
    out.append(text, last, std::string::npos);
    return out;
  }
  if (value.is_array()) {
    Json out = Json::array();
    for (const auto& item : value) out.push_back(resolve(item));
    return out;
  }
  if (value.is_object()) {
    Json out = Json::object();
    for (const auto& [k, v] : value.items()) out[k] = resolve(v);
    return out;
  }
  return value;
}

namespace {

// The sandbox's own globals, read from a fresh state: `functions_only` keeps the callable ones.
std::vector<std::string> sandbox_globals(bool functions_only) {
  LuaState lua(kExpressionLimits);
  lua_State* L = lua.get();
  std::vector<std::string> out;
  lua_pushglobaltable(L);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (lua_type(L, -2) == LUA_TSTRING && (!functions_only || lua_type(L, -1) == LUA_TFUNCTION))
      out.push_back(lua_tostring(L, -2));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  std::sort(out.begin(), out.end());
  const auto& functions = expression_function_names();
  out.insert(out.end(), functions.begin(), functions.end());
  return out;
}

}  // namespace

const std::vector<std::string>& expression_callable_names() {
  static const std::vector<std::string> names = sandbox_globals(true);
  return names;
}

const std::vector<std::string>& expression_builtin_names() {
  static const std::vector<std::string> names = sandbox_globals(false);
  return names;
}

bool is_truthy(const Json& value) { return !(value.is_null() || (value.is_boolean() && !value.get<bool>())); }

}  // namespace flowrun
