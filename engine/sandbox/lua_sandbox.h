#pragma once
// The sandbox's replacements for base and library functions that could run past every limit
// (lua_sandbox.cc).
struct lua_State;

namespace flowrun {

// Installs them in the globals of `L`, which must belong to a LuaState:
// - pcall and xpcall re-raise a kill they caught, even as the last thing a chunk does;
// - xpcall's message handler is skipped once a limit, cancel or deadline has stopped the script
//   (Lua runs a handler for an error raised by a hook with hooks off, so a looping handler hung);
// - setmetatable refuses a metatable with __gc (finalizers run with hooks off, even in lua_close);
// - string.find/match/gmatch/gsub count their backtracking steps (lua_pattern.h);
// - table.move counts each element it moves; string.rep returns "" at once for an empty result;
// - print is removed (it wrote raw values, secrets included, to stdout).
void harden_sandbox(lua_State* L);

}  // namespace flowrun
