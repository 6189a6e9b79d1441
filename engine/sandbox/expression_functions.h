#pragma once
#include <string>
#include <string_view>
#include <vector>

struct lua_State;

namespace flowrun {

// The functions every expression may call besides the sandbox's Lua library, as in GitHub Actions:
//   contains(haystack, needle)   a list holds the element, or a text holds the substring; text is
//                                compared case-insensitively, numbers and booleans as their text
//   startsWith(text, prefix), endsWith(text, suffix)   case-insensitive
//   format('{0} of {1}', a, b)   '{{' and '}}' are literal braces; a table argument becomes JSON
//   toJSON(value)                compact JSON text; fromJSON(text) the value of a JSON text
//   always()     true
//   success()    true while the global `run.status` is "running" or "succeeded" (or there is no run)
//   failure()    true when `run.status` is "failed"
//   cancelled()  true when `run.status` is "cancelled"
// The status functions read `run.status` from the evaluator's scope: the executor sets it to
// "running" while the main steps run, and in a `finally` to how the body ended ("succeeded",
// "failed" or "cancelled").
const std::vector<std::string>& expression_function_names();

// Pushes the function called `name` and returns true, or pushes nothing and returns false.
bool push_expression_function(lua_State* L, std::string_view name);

}  // namespace flowrun
