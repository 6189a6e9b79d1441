#pragma once
// The `flow` table a Lua step receives: logging, failing with a kind, sleeping (cancellable),
// the environment, JSON, HTTP (whole or line by line), processes and SQLite. Every function
// reaches the step's context through a FlowRuntime, so it honours the step's cancellation,
// deadline and redaction.
struct lua_State;

namespace flowrun {

class LuaState;
class StepContext;

struct FlowRuntime {
  StepContext* ctx;
  LuaState* lua;
};

// Pushes the `flow` table; `rt` must outlive the state's use of it.
void push_flow_api(lua_State* L, FlowRuntime* rt);

// Sets the global `print`: its arguments, tostring'ed and tab-separated, become one info line of
// the step's log (which redacts secrets), never raw bytes on stdout.
void set_print(lua_State* L, FlowRuntime* rt);

}  // namespace flowrun
