#pragma once
// Lua patterns with a step budget (lua_pattern.cc).
struct lua_State;

namespace flowrun {

// Replaces string.find, match, gmatch and gsub of the state's `string` table (also the strings'
// methods) with versions whose work counts against the LuaState's instruction limit, deadline
// and cancel token. The state must belong to a LuaState.
void install_bounded_patterns(lua_State* L);

}  // namespace flowrun
