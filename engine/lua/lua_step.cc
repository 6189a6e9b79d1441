#include "engine/lua/lua_step.h"

#include <fstream>
#include <lua.hpp>
#include <sstream>

#include "engine/io/byte_size.h"
#include "engine/io/output_limit.h"
#include "engine/io/step_error.h"
#include "engine/lua/lua_flow.h"
#include "engine/model/diagnostics.h"
#include "engine/model/workflow.h"
#include "engine/sandbox/lua_state.h"
#include "engine/step_api/step_context.h"
#include "engine/step_api/step_registry.h"

namespace flowrun {
namespace {

const LuaLimits kStepLimits{64u << 20, 200'000'000};

std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs the chunk and leaves the module table on the stack (a returned function becomes
// {run = f}; with nothing returned, the globals `run` and `poll` are used).
void push_module(LuaState& lua, const std::string& code, const std::string& chunk_name) {
  lua_State* L = lua.get();
  lua.load(code, "@" + chunk_name);
  lua.protected_call(0, 1);
  if (lua_type(L, -1) == LUA_TFUNCTION) {
    lua_newtable(L);
    lua_insert(L, -2);
    lua_setfield(L, -2, "run");
  } else if (lua_type(L, -1) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    for (const char* name : {"run", "poll", "description", "params"}) {
      lua_getglobal(L, name);
      lua_setfield(L, -2, name);
    }
  }
}

class LuaScriptType;

// One attempt of a Lua step: a fresh sandbox holding the module and, for pollers, a state table.
class LuaExecution final : public Poller {
 public:
  LuaExecution(const std::string& code, const std::string& chunk_name, StepContext& ctx)
      : lua_(kStepLimits), rt_{&ctx, &lua_} {
    lua_.set_interrupts(&ctx.cancel(), &ctx.clock(), ctx.deadline());
    set_print(lua_.get(), &rt_);
    push_module(lua_, code, chunk_name);
    module_ref_ = luaL_ref(lua_.get(), LUA_REGISTRYINDEX);
    lua_newtable(lua_.get());
    state_ref_ = luaL_ref(lua_.get(), LUA_REGISTRYINDEX);
  }

  Json run(StepContext& ctx) {
    rt_.ctx = &ctx;
    lua_State* L = lua_.get();
    if (!push_member("run")) throw StepError::permanent(ctx.step().lua_path + ": the script has no run function");
    lua_.push_json(ctx.with());
    push_flow_api(L, &rt_);
    call(2, 1);
    Json out = outputs_to_json(ctx, -1);
    lua_pop(L, 1);
    if (out.is_null()) return Json::object();
    if (!out.is_object()) return Json{{"result", out}};
    return out;
  }

  PollResult poll(StepContext& ctx) override {
    rt_.ctx = &ctx;
    lua_State* L = lua_.get();
    if (!push_member("poll")) throw StepError::permanent("the script has no poll function");
    lua_.push_json(ctx.with());
    push_flow_api(L, &rt_);
    lua_rawgeti(L, LUA_REGISTRYINDEX, state_ref_);
    call(3, 3);
    PollResult r;
    std::string status = lua_tostring(L, -3) ? lua_tostring(L, -3) : "";
    if (lua_type(L, -2) == LUA_TTABLE) r.outputs = outputs_to_json(ctx, -2);
    if (lua_tostring(L, -1)) r.message = lua_tostring(L, -1);
    lua_pop(L, 3);
    if (status == "done")
      r.status = PollStatus::kDone;
    else if (status == "pending")
      r.status = PollStatus::kPending;
    else if (status == "failed")
      r.status = PollStatus::kFailed;
    else
      throw StepError::permanent("poll must return \"done\", \"pending\" or \"failed\", not \"" + status + "\"");
    return r;
  }

 private:
  // The returned value as JSON, stopping as soon as it passes the step's max_output.
  Json outputs_to_json(StepContext& ctx, int index) {
    const size_t limit = ctx.step().max_output.value_or(kDefaultMaxOutput);
    try {
      return lua_.to_json(index, limit);
    } catch (const JsonTooLarge&) {
      throw StepError::permanent("outputs are larger than max_output (" + format_bytes(limit) +
                                 "): return less, or raise `max_output:` on the step");
    }
  }

  bool push_member(const char* name) {
    lua_State* L = lua_.get();
    lua_rawgeti(L, LUA_REGISTRYINDEX, module_ref_);
    lua_getfield(L, -1, name);
    lua_remove(L, -2);
    if (lua_type(L, -1) == LUA_TFUNCTION) return true;
    lua_pop(L, 1);
    return false;
  }

  void call(int nargs, int nresults) {
    try {
      lua_.protected_call(nargs, nresults);
    } catch (const LuaError& e) {
      if (!e.traceback().empty()) rt_.ctx->log().debug(e.traceback());
      throw e.to_step_error();
    }
  }

  LuaState lua_;
  FlowRuntime rt_;
  int module_ref_ = LUA_NOREF;
  int state_ref_ = LUA_NOREF;
};

class LuaScriptType final : public StepType {
 public:
  LuaScriptType(StepInfo info, std::string code, std::string chunk_name)
      : info_(std::move(info)), code_(std::move(code)), chunk_name_(std::move(chunk_name)) {}

  const StepInfo& info() const override { return info_; }

  Json run(StepContext& ctx) const override {
    try {
      LuaExecution exec(code_, chunk_name_, ctx);
      return exec.run(ctx);
    } catch (const LuaError& e) {
      throw e.to_step_error();
    }
  }

  std::unique_ptr<Poller> start_polling(StepContext& ctx) const override {
    try {
      return std::make_unique<LuaExecution>(code_, chunk_name_, ctx);
    } catch (const LuaError& e) {
      throw e.to_step_error();
    }
  }

 private:
  StepInfo info_;
  std::string code_;
  std::string chunk_name_;
};

// Throws std::runtime_error for a type that is not one, so a script cannot declare a type the
// loader would not check.
ParamSpec param_from_lua(const std::string& name, const Json& spec) {
  ParamSpec p{name, ParamType::kAny, false, ""};
  std::string type = "any";
  if (spec.is_string()) {
    type = spec.get<std::string>();
  } else if (spec.is_object()) {
    const Json declared = spec.value("type", Json("any"));
    type = declared.is_string() ? declared.get<std::string>() : declared.dump();
    p.required = spec.contains("required") && spec["required"] == true;
    p.description = spec.value("description", "");
  }
  auto parsed = parse_param_type(type);
  if (!parsed) {
    std::string hint = closest_match(type, param_type_names());
    if (hint.empty()) {
      for (const auto& known : param_type_names()) hint += (hint.empty() ? "use one of: " : ", ") + known;
    } else {
      hint = "did you mean '" + hint + "'?";
    }
    throw std::runtime_error("parameter '" + name + "' has unknown type '" + type + "' (" + hint + ")");
  }
  p.type = *parsed;
  return p;
}

// The step type of a script; throws (std::exception, what() the whole message) when the script
// cannot be read or run, or returns neither function. Its callers report into Diagnostics.
std::shared_ptr<StepType> script_type(const std::filesystem::path& file, const std::string& display_name,
                                      const std::string& type_name) {
  std::string code = read_file(file);
  LuaState lua(kStepLimits);
  push_module(lua, code, display_name);
  Json module_info = Json::object();
  lua_State* L = lua.get();
  bool has_run = false, has_poll = false;
  lua_getfield(L, -1, "run");
  has_run = lua_type(L, -1) == LUA_TFUNCTION;
  lua_getfield(L, -2, "poll");
  has_poll = lua_type(L, -1) == LUA_TFUNCTION;
  lua_pop(L, 2);
  if (!has_run && !has_poll) throw std::runtime_error(display_name + ": the script returns no run or poll function");
  StepInfo info;
  info.name = type_name;
  info.poller = has_poll;
  lua_getfield(L, -1, "description");
  info.summary = lua_tostring(L, -1) ? lua_tostring(L, -1) : "Lua step " + display_name;
  lua_pop(L, 1);
  lua_getfield(L, -1, "params");
  if (lua_type(L, -1) == LUA_TTABLE) {
    const Json params = lua.to_json(-1);
    for (const auto& [name, spec] : params.items()) info.params.push_back(param_from_lua(name, spec));
  } else {
    info.params.push_back({"*", ParamType::kAny, false, "any parameter: the script declares none"});
  }
  lua_pop(L, 2);
  if (info.poller) {
    for (const char* p : {"interval", "threshold", "timeout"})
      if (std::none_of(info.params.begin(), info.params.end(), [&](const ParamSpec& s) { return s.name == p; }))
        info.params.push_back(
            {p, std::string(p) == "threshold" ? ParamType::kInteger : ParamType::kDuration, false, "polling policy"});
  }
  return std::make_shared<LuaScriptType>(std::move(info), std::move(code), display_name);
}

}  // namespace

std::shared_ptr<StepType> load_lua_script_type(const std::filesystem::path& file, const std::string& display_name,
                                               const Location& at, Diagnostics& diagnostics,
                                               const std::string& type_name) {
  try {
    return script_type(file, display_name, type_name);
  } catch (const std::exception& e) {
    diagnostics.error(at, std::string("cannot load Lua script: ") + e.what());
    return nullptr;
  }
}

void register_lua_step_types(StepRegistry& registry, const std::filesystem::path& dir,
                             const std::filesystem::path& project_root, Diagnostics& diagnostics) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
    if (entry.path().extension() == ".lua") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    std::string name = file.stem().string();
    std::string display = std::filesystem::relative(file, project_root, ec).string();
    if (display.empty()) display = file.string();
    std::shared_ptr<StepType> type;
    try {
      type = script_type(file, display, name);
    } catch (const std::exception& e) {
      diagnostics.error(Location{display}, e.what());
      continue;
    }
    // The registry owns step types through unique_ptr; wrap the shared one.
    struct Shared final : StepType {
      explicit Shared(std::shared_ptr<StepType> t) : t_(std::move(t)) {}
      const StepInfo& info() const override { return t_->info(); }
      Json run(StepContext& ctx) const override { return t_->run(ctx); }
      std::unique_ptr<Poller> start_polling(StepContext& ctx) const override { return t_->start_polling(ctx); }
      std::shared_ptr<StepType> t_;
    };
    try {
      registry.add(std::make_unique<Shared>(std::move(type)));
    } catch (const std::invalid_argument& e) {
      diagnostics.error(Location{display}, display + ": " + e.what());
    }
  }
}

}  // namespace flowrun
