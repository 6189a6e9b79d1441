#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "engine/model/diagnostics.h"
#include "engine/step_api/step_type.h"

namespace flowrun {

class StepRegistry;

// A step type written in Lua. The script returns a module table:
//   return {
//     description = "one line",
//     params = { url = {type = "string", required = true, description = "..."} },
//     run = function(with, flow) ... return outputs end,          -- an ordinary step, or
//     poll = function(with, flow, state) return "done", outputs end -- a poller
//   }
// A script may also return just a function (its `run`). Without `params` any `with` key is
// accepted. A script that cannot be loaded gives null and one diagnostic at `at`, "cannot load
// Lua script: script:line: message".
std::shared_ptr<StepType> load_lua_script_type(const std::filesystem::path& file, const std::string& display_name,
                                               const Location& at, Diagnostics& diagnostics,
                                               const std::string& type_name = "lua");

// Registers every `dir/NAME.lua` as step type NAME. A file that fails is skipped, with one
// diagnostic naming it (its location is the file, relative to `project_root`).
void register_lua_step_types(StepRegistry& registry, const std::filesystem::path& dir,
                             const std::filesystem::path& project_root, Diagnostics& diagnostics);

}  // namespace flowrun
