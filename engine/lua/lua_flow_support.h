#pragma once
// Plumbing shared by the files that implement flow.* functions (lua_flow.cc, lua_flow_sql.cc).
#include <lua.hpp>
#include <string>

#include "engine/io/step_error.h"
#include "engine/lua/lua_flow.h"
#include "engine/sandbox/lua_state.h"

namespace flowrun {

inline FlowRuntime& flow_runtime(lua_State* L) {
  return *static_cast<FlowRuntime*>(lua_touserdata(L, lua_upvalueindex(1)));
}

// The string (or number) argument at `index`; throws StepError::permanent naming `what`.
std::string arg_string(lua_State* L, int index, const char* what);

// "chunk:line: " of the Lua code calling the current C function.
std::string lua_caller(lua_State* L);

// Turns C++ exceptions into Lua errors carrying the StepError kind. The error object is pushed
// inside the catch; lua_error (a longjmp) runs only after every C++ local is gone.
template <int (*F)(lua_State*, FlowRuntime&)>
int trampoline(lua_State* L) {
  bool failed = false;
  try {
    return F(L, flow_runtime(L));
  } catch (const StepError& e) {
    push_flow_error(L, lua_caller(L) + e.what(), e.kind());
    failed = true;
  } catch (const LuaError& e) {
    push_flow_error(L, lua_caller(L) + e.what(), e.kind());
    failed = true;
  } catch (const std::exception& e) {
    push_flow_error(L, lua_caller(L) + e.what(), ErrorKind::kPermanent);
    failed = true;
  }
  if (failed) return lua_error(L);
  return 0;
}

// Sets table[-1].name to `f` with `rt` as its upvalue.
inline void set_function(lua_State* L, FlowRuntime* rt, const char* name, lua_CFunction f) {
  lua_pushlightuserdata(L, rt);
  lua_pushcclosure(L, f, 1);
  lua_setfield(L, -2, name);
}

// Adds flow.sql and flow.db to the table on top of the stack (lua_flow_sql.cc).
void add_sql_api(lua_State* L, FlowRuntime* rt);

}  // namespace flowrun
