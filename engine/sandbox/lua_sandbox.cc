#include "engine/sandbox/lua_sandbox.h"

#include <lua.hpp>

#include "engine/sandbox/lua_pattern.h"
#include "engine/sandbox/lua_state.h"

namespace flowrun {
namespace {

constexpr lua_Integer kMoveBatch = 1024;

// The message handler xpcall really gets: upvalue 1 is the script's handler.
int guarded_handler(lua_State* L) {
  if (lua_owner(L).stopped()) return 1;  // the kill error passes unchanged; the handler may loop
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

// xpcall(f, handler, ...): upvalue 1 is Lua's own xpcall.
int sandbox_xpcall(lua_State* L) {
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, guarded_handler, 1);
  lua_replace(L, 2);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  LuaState::charge(L, 0);  // caught a kill: raise it again (`return xpcall(...)` runs no instruction after)
  return lua_gettop(L);
}

// pcall(f, ...): upvalue 1 is Lua's own; like xpcall, never returns a kill as caught.
int sandbox_pcall(lua_State* L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  LuaState::charge(L, 0);
  return lua_gettop(L);
}

// setmetatable(t, mt): upvalue 1 is Lua's own. Lua marks a table for finalization only when
// its metatable has __gc at this moment, so checking here is enough.
int sandbox_setmetatable(lua_State* L) {
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL) return luaL_error(L, "__gc metamethods are not allowed in the sandbox");
    lua_pop(L, 1);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

// Lua 5.4's table.move (ltablib.c), on tables only, charging every kMoveBatch elements:
// table.move({}, 1, 1e14, 1, {}) looped in C for days.
int sandbox_table_move(lua_State* L) {
  lua_Integer f = luaL_checkinteger(L, 2);
  lua_Integer e = luaL_checkinteger(L, 3);
  lua_Integer t = luaL_checkinteger(L, 4);
  int tt = !lua_isnoneornil(L, 5) ? 5 : 1;
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, tt, LUA_TTABLE);
  if (e >= f) {
    luaL_argcheck(L, f > 0 || e < LUA_MAXINTEGER + f, 3, "too many elements to move");
    lua_Integer n = e - f + 1;
    luaL_argcheck(L, t <= LUA_MAXINTEGER - n + 1, 4, "destination wrap around");
    const bool forward = t > e || t <= f || (tt != 1 && !lua_compare(L, 1, tt, LUA_OPEQ));
    for (lua_Integer k = 0; k < n; ++k) {
      lua_Integer i = forward ? k : n - 1 - k;
      lua_geti(L, 1, f + i);
      lua_seti(L, tt, t + i);
      if ((k + 1) % kMoveBatch == 0) LuaState::charge(L, kMoveBatch);
    }
  }
  lua_pushvalue(L, tt);
  return 1;
}

// string.rep(s, n [, sep]): upvalue 1 is Lua's own, which copies zero bytes n times when s and
// sep are empty (('').rep('', 1e15) never returned). Any other large result fails at the
// memory limit before the copying starts.
int sandbox_string_rep(lua_State* L) {
  size_t len = 0, sep_len = 0;
  luaL_checklstring(L, 1, &len);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_optlstring(L, 3, "", &sep_len);
  if (n <= 0 || len + sep_len == 0) {
    lua_pushliteral(L, "");
    return 1;
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

// Replaces table[name] (table on top of the stack) with `f` closed over the original.
void wrap(lua_State* L, const char* name, lua_CFunction f) {
  lua_getfield(L, -1, name);
  lua_pushcclosure(L, f, 1);
  lua_setfield(L, -2, name);
}

}  // namespace

void harden_sandbox(lua_State* L) {
  lua_pushglobaltable(L);
  wrap(L, "xpcall", sandbox_xpcall);
  wrap(L, "pcall", sandbox_pcall);
  wrap(L, "setmetatable", sandbox_setmetatable);
  lua_pushnil(L);
  lua_setfield(L, -2, "print");
  lua_getfield(L, -1, LUA_TABLIBNAME);
  lua_pushcfunction(L, sandbox_table_move);
  lua_setfield(L, -2, "move");
  lua_pop(L, 1);
  lua_getfield(L, -1, LUA_STRLIBNAME);
  wrap(L, "rep", sandbox_string_rep);
  lua_pop(L, 2);
  install_bounded_patterns(L);
}

}  // namespace flowrun
