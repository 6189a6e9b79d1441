#include "engine/sandbox/lua_state.h"

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <lua.hpp>
#include <string>
#include <vector>

#include "engine/io/byte_size.h"
#include "engine/io/json_parse.h"
#include "engine/io/output_limit.h"
#include "engine/io/utf8.h"
#include "engine/sandbox/lua_sandbox.h"

namespace flowrun {
namespace {

constexpr int kHookEvery = 1000;
constexpr int kMaxDepth = 64;
const char* const kArrayMarker = "flowrun.array";
const char* const kFlowErrorField = "__flow_error";

// Keeps the first line(s) of the message; the traceback goes beside it for debug logs.
int traceback_handler(lua_State* L) {
  if (lua_type(L, 1) == LUA_TTABLE) return 1;  // a flow error object: keep as is
  const char* msg = lua_tostring(L, 1);
  luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
  return 1;
}

int sandbox_load(lua_State* L) {
  size_t len = 0;
  const char* code = luaL_checklstring(L, 1, &len);
  const char* name = luaL_optstring(L, 2, "=(load)");
  // Text only: precompiled bytecode can break out of any sandbox.
  int status = luaL_loadbufferx(L, code, len, name, "t");
  if (status != LUA_OK) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  // The loaded chunk sees the same sandboxed globals, never a fresh unrestricted table.
  lua_pushglobaltable(L);
  lua_setupvalue(L, -2, 1);
  return 1;
}

// A number key as Lua's tostring writes it ("%.14g" for floats).
std::string number_key(lua_State* L, int index) {
  if (lua_isinteger(L, index)) return std::to_string(lua_tointeger(L, index));
  char buf[64];
  std::snprintf(buf, sizeof buf, LUA_NUMBER_FMT, static_cast<double>(lua_tonumber(L, index)));
  std::string s = buf;
  if (s.find_first_of(".eninf") == std::string::npos) s += ".0";
  return s;
}

// Lua calls this for an error outside any protected call (an allocation failing while the engine
// pushes or reads values); it must not return, and abort() would lose the run: throw instead.
int throw_on_panic(lua_State* L) {
  const char* msg = lua_tostring(L, -1);
  throw LuaError(std::string("Lua error outside a protected call: ") + (msg ? msg : "not enough memory"),
                 ErrorKind::kPermanent);
}

}  // namespace

LuaState& lua_owner(lua_State* L) { return **static_cast<LuaState**>(lua_getextraspace(L)); }

LuaState::LuaState(LuaLimits limits) : limits_(limits) {
  L_ = lua_newstate(&LuaState::allocate, this);
  if (!L_) throw LuaError("cannot create a Lua state", ErrorKind::kPermanent);
  *static_cast<LuaState**>(lua_getextraspace(L_)) = this;
  lua_atpanic(L_, throw_on_panic);
  open_sandbox();
  lua_sethook(L_, &LuaState::hook, LUA_MASKCOUNT, kHookEvery);
}

LuaState::~LuaState() {
  if (L_) lua_close(L_);
}

void* LuaState::allocate(void* self_ptr, void* ptr, size_t old_size, size_t new_size) {
  auto* self = static_cast<LuaState*>(self_ptr);
  size_t old = ptr ? old_size : 0;  // without ptr, old_size encodes the object type
  if (new_size == 0) {
    std::free(ptr);
    self->used_ -= old;
    return nullptr;
  }
  if (new_size > old && self->used_ - old + new_size > self->limits_.memory_bytes) return nullptr;
  void* p = std::realloc(ptr, new_size);
  if (!p) return nullptr;
  self->used_ = self->used_ - old + new_size;
  return p;
}

void LuaState::check_limits() {
  if (!kill_reason_.empty()) return;
  if (instructions_ > limits_.instructions) {
    kill_reason_ = "instruction limit exceeded (" + std::to_string(limits_.instructions) + " instructions)";
    kill_kind_ = ErrorKind::kPermanent;
  } else if (cancel_ && cancel_->cancelled()) {
    kill_reason_ = "cancelled";
    kill_kind_ = ErrorKind::kCancelled;
  } else if (deadline_ && clock_ && clock_->now() >= *deadline_) {
    kill_reason_ = "timed out";
    kill_kind_ = ErrorKind::kTimeout;
  }
}

void LuaState::charge(lua_State* L, uint64_t work) {
  LuaState& self = lua_owner(L);
  self.instructions_ += work;
  self.check_limits();
  if (!self.kill_reason_.empty()) {
    // From now on the hook fires at every instruction: the first one executed outside a pcall
    // raises an error that nothing in the script can catch.
    lua_sethook(L, &LuaState::hook, LUA_MASKCOUNT, 1);
    luaL_error(L, "%s", self.kill_reason_.c_str());
  }
}

void LuaState::hook(lua_State* L, lua_Debug*) { charge(L, kHookEvery); }

void LuaState::set_interrupts(const CancelToken* cancel, Clock* clock, std::optional<TimePoint> deadline) {
  cancel_ = cancel;
  clock_ = clock;
  deadline_ = deadline;
}

void LuaState::open_sandbox() {
  static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},        {LUA_TABLIBNAME, luaopen_table},
                                  {LUA_STRLIBNAME, luaopen_string}, {LUA_MATHLIBNAME, luaopen_math},
                                  {LUA_UTF8LIBNAME, luaopen_utf8},  {LUA_OSLIBNAME, luaopen_os}};
  for (const auto& lib : libs) {
    luaL_requiref(L_, lib.name, lib.func, 1);
    lua_pop(L_, 1);
  }
  lua_pushglobaltable(L_);
  for (const char* name : {"dofile", "loadfile", "collectgarbage", "require", "package", "io", "debug"}) {
    lua_pushnil(L_);
    lua_setfield(L_, -2, name);
  }
  lua_pushcfunction(L_, sandbox_load);
  lua_setfield(L_, -2, "load");
  lua_pop(L_, 1);
  harden_sandbox(L_);
  lua_pushglobaltable(L_);
  // os: keep only the clock functions; execute, exit, getenv, remove, rename, tmpname go.
  lua_newtable(L_);
  lua_getfield(L_, -2, LUA_OSLIBNAME);
  for (const char* name : {"time", "clock", "date", "difftime"}) {
    lua_getfield(L_, -1, name);
    lua_setfield(L_, -3, name);
  }
  lua_pop(L_, 1);
  lua_setfield(L_, -2, LUA_OSLIBNAME);
  // string.dump produces bytecode; there is no use for it here.
  lua_getfield(L_, -1, LUA_STRLIBNAME);
  lua_pushnil(L_);
  lua_setfield(L_, -2, "dump");
  lua_pop(L_, 2);
  // The loaded-modules table still holds the full os library: drop it.
  lua_pushnil(L_);
  lua_setfield(L_, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  // Hidden from getmetatable: a script adding __gc to it would make every later array finalizable.
  luaL_newmetatable(L_, kArrayMarker);
  lua_pushboolean(L_, 0);
  lua_setfield(L_, -2, "__metatable");
  lua_pop(L_, 1);
}

void LuaState::load(std::string_view code, const std::string& chunk_name) {
  int status = luaL_loadbufferx(L_, code.data(), code.size(), chunk_name.c_str(), "t");
  if (status != LUA_OK) {
    std::string msg = lua_tostring(L_, -1) ? lua_tostring(L_, -1) : "syntax error";
    lua_pop(L_, 1);
    if (status == LUA_ERRMEM) msg = "memory limit exceeded while loading " + chunk_name;
    throw LuaError(msg, ErrorKind::kPermanent);
  }
}

void LuaState::protected_call(int nargs, int nresults) {
  int base = lua_gettop(L_) - nargs;  // the function's index
  lua_pushcfunction(L_, traceback_handler);
  lua_insert(L_, base);
  int status = lua_pcall(L_, nargs, nresults, base);
  lua_remove(L_, base);
  if (status == LUA_OK && kill_reason_.empty()) return;
  if (status == LUA_OK) {  // the script caught the kill and returned at once: it still stopped
    lua_settop(L_, base - 1);
    throw LuaError(kill_reason_, kill_kind_);
  }

  ErrorKind kind = ErrorKind::kPermanent;
  std::string message, traceback;
  if (!kill_reason_.empty()) {
    message = kill_reason_;
    kind = kill_kind_;
  } else if (status == LUA_ERRMEM) {
    message = "memory limit exceeded (" + std::to_string(limits_.memory_bytes >> 20) + " MiB)";
  } else if (lua_type(L_, -1) == LUA_TTABLE) {
    // Raw reads: this runs outside any protected call, where a script's __index must not run.
    lua_pushstring(L_, kFlowErrorField);
    const bool flow_error = lua_rawget(L_, -2) == LUA_TBOOLEAN;
    lua_pop(L_, 1);
    if (flow_error) {
      lua_pushstring(L_, "message");
      lua_rawget(L_, -2);
      message = lua_tostring(L_, -1) ? lua_tostring(L_, -1) : "error";
      lua_pushstring(L_, "kind");
      lua_rawget(L_, -3);
      kind = static_cast<ErrorKind>(lua_tointeger(L_, -1));
      lua_pop(L_, 2);
    } else {
      message = "error (the error object is a table, not a string)";
    }
  } else {
    std::string full = lua_tostring(L_, -1) ? lua_tostring(L_, -1) : "error";
    auto cut = full.find("\nstack traceback:");
    message = full.substr(0, cut);
    if (cut != std::string::npos) traceback = full.substr(cut + 1);
  }
  lua_pop(L_, 1);
  throw LuaError(message, kind, traceback);
}

// __tostring of flow errors: a script that catches one with pcall can print it.
static int flow_error_text(lua_State* L) {
  lua_getfield(L, 1, "message");
  return 1;
}

void push_flow_error(lua_State* L, const std::string& message, ErrorKind kind) {
  lua_createtable(L, 0, 3);
  if (luaL_newmetatable(L, "flowrun.error")) {
    lua_pushcfunction(L, flow_error_text);
    lua_setfield(L, -2, "__tostring");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
  }
  lua_setmetatable(L, -2);
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, kFlowErrorField);
  lua_pushlstring(L, message.data(), message.size());
  lua_setfield(L, -2, "message");
  lua_pushinteger(L, static_cast<lua_Integer>(kind));
  lua_setfield(L, -2, "kind");
}

namespace {

// SAX events of one JSON text turned into Lua values as push_json_at makes them: an open array or
// object waits on the Lua stack until it ends, each finished value goes into the container below.
class LuaJsonSax {
 public:
  explicit LuaJsonSax(lua_State* L) : L_(L) {}

  bool null() {
    return value([&] { lua_pushnil(L_); });
  }
  bool boolean(bool b) {
    return value([&] { lua_pushboolean(L_, b); });
  }
  bool number_integer(int64_t v) {
    return value([&] { lua_pushinteger(L_, v); });
  }
  bool number_unsigned(uint64_t v) {
    return value([&] { lua_pushinteger(L_, static_cast<lua_Integer>(v)); });
  }
  bool number_float(double v, const std::string&) {
    return value([&] { lua_pushnumber(L_, v); });
  }
  bool string(std::string& s) {
    return value([&] { lua_pushlstring(L_, s.data(), s.size()); });
  }
  bool binary(Json::binary_t&) {
    return value([&] { lua_pushnil(L_); });
  }
  bool start_object(size_t) { return open(false); }
  bool key(std::string& k) {
    frames_.back().key = std::move(k);
    return true;
  }
  bool end_object() { return close(); }
  bool start_array(size_t) { return open(true); }
  bool end_array() {
    const Frame& f = frames_.back();
    if (f.holes) {  // sized like push_json's table, so that # sees past a null as it does there
      lua_createtable(L_, static_cast<int>(f.n), 0);
      for (lua_Integer i = 1; i <= f.n; ++i) {
        lua_rawgeti(L_, -2, i);
        lua_rawseti(L_, -2, i);
      }
      lua_remove(L_, -2);
    }
    luaL_setmetatable(L_, kArrayMarker);
    return close();
  }
  bool parse_error(size_t, const std::string&, const nlohmann::detail::exception&) { return false; }

 private:
  struct Frame {
    bool array;
    lua_Integer n = 0;
    bool holes = false;  // a null item: a nil in the table
    std::string key;
  };

  bool open(bool array) {
    if (!lua_checkstack(L_, 4)) throw LuaError("out of Lua stack converting JSON to Lua", ErrorKind::kPermanent);
    lua_createtable(L_, 0, 0);
    frames_.push_back({array, 0, false, {}});
    return true;
  }
  bool close() {
    frames_.pop_back();
    store();
    return true;
  }
  template <typename Push>
  bool value(Push push) {
    push();
    store();
    return true;
  }
  // Moves the value on top into the open container, if any (a top-level value stays pushed).
  void store() {
    if (frames_.empty()) return;
    Frame& f = frames_.back();
    if (f.array) {
      if (lua_isnil(L_, -1)) f.holes = true;
      lua_rawseti(L_, -2, ++f.n);
    } else {
      lua_setfield(L_, -2, f.key.c_str());
    }
  }

  lua_State* L_;
  std::vector<Frame> frames_;
};

}  // namespace

namespace {

// Texts up to this size take simdjson; its buffers are ~14 times the text and stay allocated per
// thread for the next line, so a huge line takes the SAX parser instead.
constexpr size_t kFastJsonMaxBytes = size_t{1} << 20;

simdjson::dom::parser& line_parser() {
  // Per thread, not per fiber: a parse and the walk after it never park.
  thread_local simdjson::dom::parser parser(kFastJsonMaxBytes);
  return parser;
}

// A \uD800-\uDFFF escape: nlohmann's rules for surrogates decide those texts, not simdjson's.
bool has_surrogate_escape(std::string_view text) {
  for (size_t i = text.find("\\u"); i != std::string_view::npos; i = text.find("\\u", i + 1)) {
    if (i + 3 < text.size() && (text[i + 2] == 'd' || text[i + 2] == 'D') &&
        std::strchr("89abcdefABCDEF", text[i + 3]) != nullptr && text[i + 3] != '\0')
      return true;
  }
  return false;
}

// Pushes a parsed value exactly as LuaJsonSax builds it from the same text (same types, tables,
// array marker; a key holding a NUL byte cut there as lua_setfield does with c_str()).
void push_dom(lua_State* L, simdjson::dom::element e) {
  using simdjson::dom::element_type;
  if (!lua_checkstack(L, 4)) throw LuaError("out of Lua stack converting JSON to Lua", ErrorKind::kPermanent);
  switch (e.type()) {
    case element_type::NULL_VALUE:
      lua_pushnil(L);
      break;
    case element_type::BOOL:
      lua_pushboolean(L, e.get_bool().value_unsafe());
      break;
    case element_type::INT64:
      lua_pushinteger(L, e.get_int64().value_unsafe());
      break;
    case element_type::UINT64:
      lua_pushinteger(L, static_cast<lua_Integer>(e.get_uint64().value_unsafe()));
      break;
    case element_type::DOUBLE:
      lua_pushnumber(L, e.get_double().value_unsafe());
      break;
    case element_type::STRING: {
      const std::string_view s = e.get_string().value_unsafe();
      lua_pushlstring(L, s.data(), s.size());
      break;
    }
    case element_type::ARRAY: {
      const simdjson::dom::array a = e.get_array().value_unsafe();
      lua_createtable(L, static_cast<int>(std::min<size_t>(a.size(), 1u << 24)), 0);
      lua_Integer i = 0;
      for (simdjson::dom::element item : a) {
        push_dom(L, item);
        lua_rawseti(L, -2, ++i);  // a null leaves a hole, as in the SAX path's sized table
      }
      luaL_setmetatable(L, kArrayMarker);
      break;
    }
    case element_type::OBJECT: {
      const simdjson::dom::object o = e.get_object().value_unsafe();
      lua_createtable(L, 0, static_cast<int>(std::min<size_t>(o.size(), 1u << 24)));
      for (auto it = o.begin(); it != o.end(); ++it) {
        push_dom(L, it.value());
        lua_setfield(L, -2, it.key_c_str());  // a repeated key: the last one wins, as there
      }
      break;
    }
  }
}

}  // namespace

bool LuaState::push_json_text(std::string_view text) {
  check_json_depth(text);
  // simdjson validates the whole text (UTF-8 included) before anything is pushed; any text it
  // refuses or that takes another path goes to nlohmann, so errors and edge cases stay as they were.
  if (text.size() <= kFastJsonMaxBytes && !has_surrogate_escape(text)) {
    simdjson::dom::element root;
    if (line_parser().parse(text.data(), text.size()).get(root) == simdjson::SUCCESS) {
      const int top = lua_gettop(L_);
      try {
        push_dom(L_, root);
        return true;
      } catch (...) {
        lua_settop(L_, std::min(top, lua_gettop(L_)));
        throw;
      }
    }
  }
  return push_json_text_nlohmann(text);
}

bool LuaState::push_json_text_nlohmann(std::string_view text) {
  check_json_depth(text);
  const int top = lua_gettop(L_);
  try {
    LuaJsonSax sax(L_);
    if (Json::sax_parse(text.begin(), text.end(), &sax)) return true;
  } catch (...) {
    lua_settop(L_, std::min(top, lua_gettop(L_)));
    throw;
  }
  lua_settop(L_, top);
  return false;
}

void LuaState::push_json(const Json& value) {
  const int top = lua_gettop(L_);
  try {
    push_json_at(value, 0);
  } catch (...) {
    // The tables made so far are dropped (after a panic Lua has already emptied the stack).
    lua_settop(L_, std::min(top, lua_gettop(L_)));
    throw;
  }
}

void LuaState::push_json_at(const Json& value, int depth) {
  // Recursion per level: bounded like parsed JSON, so no value overflows the C++ stack here.
  if (depth > kMaxJsonDepth)
    throw LuaError("value nested deeper than " + std::to_string(kMaxJsonDepth) + " levels to convert to Lua",
                   ErrorKind::kPermanent);
  // lua_checkstack, not luaL_checkstack: a Lua error would longjmp over C++ frames.
  if (!lua_checkstack(L_, 4)) throw LuaError("out of Lua stack converting JSON to Lua", ErrorKind::kPermanent);
  switch (value.type()) {
    case Json::value_t::null:
    case Json::value_t::discarded:
      lua_pushnil(L_);
      break;
    case Json::value_t::boolean:
      lua_pushboolean(L_, value.get<bool>());
      break;
    case Json::value_t::number_integer:
      lua_pushinteger(L_, value.get<int64_t>());
      break;
    case Json::value_t::number_unsigned:
      lua_pushinteger(L_, static_cast<lua_Integer>(value.get<uint64_t>()));
      break;
    case Json::value_t::number_float:
      lua_pushnumber(L_, value.get<double>());
      break;
    case Json::value_t::string: {
      const auto& s = value.get_ref<const std::string&>();
      lua_pushlstring(L_, s.data(), s.size());
      break;
    }
    case Json::value_t::binary:
      lua_pushnil(L_);
      break;
    case Json::value_t::array: {
      lua_createtable(L_, static_cast<int>(value.size()), 0);
      lua_Integer i = 1;
      for (const auto& item : value) {
        push_json_at(item, depth + 1);
        lua_rawseti(L_, -2, i++);
      }
      luaL_setmetatable(L_, kArrayMarker);
      break;
    }
    case Json::value_t::object: {
      lua_createtable(L_, 0, static_cast<int>(value.size()));
      for (const auto& [k, v] : value.items()) {
        push_json_at(v, depth + 1);
        lua_setfield(L_, -2, k.c_str());
      }
      break;
    }
  }
}

Json LuaState::to_json(int index, std::optional<size_t> max_bytes) {
  const int top = lua_gettop(L_);
  json_limit_ = json_budget_ = max_bytes.value_or(limits_.memory_bytes);
  try {
    return to_json_at(lua_absindex(L_, index), 0);
  } catch (const std::bad_alloc&) {
    lua_settop(L_, top);
    throw LuaError("out of memory converting a value to JSON", ErrorKind::kPermanent);
  } catch (...) {
    lua_settop(L_, top);  // an error deep inside leaves keys and values pushed: drop them
    throw;
  }
}

void LuaState::spend_json_bytes(size_t n) {
  if (n > json_budget_) throw JsonTooLarge("value larger than " + format_bytes(json_limit_) + " as JSON");
  json_budget_ -= n;
}

Json LuaState::to_json_at(int index, int depth) {
  if (depth > kMaxDepth) throw LuaError("value nested too deeply to convert to JSON", ErrorKind::kPermanent);
  // Each level pushes a key and a value; Lua guarantees only LUA_MINSTACK free slots.
  if (!lua_checkstack(L_, 4)) throw LuaError("out of Lua stack converting a value to JSON", ErrorKind::kPermanent);
  spend_json_bytes(8);  // a scalar, or the brackets and commas of a container
  switch (lua_type(L_, index)) {
    case LUA_TNIL:
    case LUA_TNONE:
      return nullptr;
    case LUA_TBOOLEAN:
      return lua_toboolean(L_, index) != 0;
    case LUA_TNUMBER:
      if (lua_isinteger(L_, index)) return static_cast<int64_t>(lua_tointeger(L_, index));
      {
        double d = lua_tonumber(L_, index);
        if (!std::isfinite(d)) return nullptr;
        return d;
      }
    case LUA_TSTRING: {
      size_t len = 0;
      const char* s = lua_tolstring(L_, index, &len);
      spend_json_bytes(len);
      return valid_utf8(std::string_view(s, len));  // Lua strings are bytes; JSON strings are UTF-8
    }
    case LUA_TTABLE: {
      bool marked_array = false;
      if (lua_getmetatable(L_, index)) {
        if (lua_rawgetp(L_, -1, &kLazyJsonKey) == LUA_TLIGHTUSERDATA) {
          const auto* behind = static_cast<const Json*>(lua_touserdata(L_, -1));
          lua_pop(L_, 2);
          spend_json_bytes(json_size_within(*behind, json_budget_));
          return *behind;
        }
        lua_pop(L_, 1);
        if (lua_rawgetp(L_, -1, &kLazyJsonPartsKey) == LUA_TLIGHTUSERDATA) {
          const auto* behind = static_cast<const LazyJsonParts*>(lua_touserdata(L_, -1));
          lua_pop(L_, 2);
          const std::vector<const Json*> parts = behind->parts();
          for (const Json* part : parts) spend_json_bytes(json_size_within(*part, json_budget_));  // before copying
          Json merged = Json::object();
          for (const Json* part : parts)
            for (const auto& [key, value] : part->items())
              if (!merged.contains(key)) merged[key] = value;
          return merged;
        }
        lua_pop(L_, 1);
        luaL_getmetatable(L_, kArrayMarker);
        marked_array = lua_rawequal(L_, -1, -2);
        lua_pop(L_, 2);
      }
      lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L_, index));
      size_t count = 0;
      lua_pushnil(L_);
      while (lua_next(L_, index)) {
        ++count;
        lua_pop(L_, 1);
      }
      if (marked_array || (n > 0 && static_cast<size_t>(n) == count)) {
        Json arr = Json::array();
        for (lua_Integer i = 1; i <= n; ++i) {
          lua_rawgeti(L_, index, i);
          arr.push_back(to_json_at(lua_gettop(L_), depth + 1));
          lua_pop(L_, 1);
        }
        return arr;
      }
      Json obj = Json::object();
      lua_pushnil(L_);
      while (lua_next(L_, index)) {
        std::string key;
        if (lua_type(L_, -2) == LUA_TSTRING) {
          size_t len = 0;
          const char* k = lua_tolstring(L_, -2, &len);
          spend_json_bytes(len);
          key = valid_utf8(std::string_view(k, len));
        } else if (lua_type(L_, -2) == LUA_TNUMBER) {
          key = number_key(L_, -2);  // not lua_tostring: an allocation failure here would be unprotected
        } else {
          lua_pop(L_, 1);
          continue;
        }
        obj[key] = to_json_at(lua_gettop(L_), depth + 1);
        lua_pop(L_, 1);
      }
      return obj;
    }
    default:
      throw LuaError(std::string("cannot convert a Lua ") + luaL_typename(L_, index) + " to JSON",
                     ErrorKind::kPermanent);
  }
}

void LuaState::set_global(const char* name, const Json& value) {
  push_json(value);
  lua_setglobal(L_, name);
}

}  // namespace flowrun
