#include "engine/lua/lua_flow.h"

#include <chrono>
#include <cstdlib>
#include <exception>

#include "engine/io/http_client.h"
#include "engine/io/json_parse.h"
#include "engine/io/line_splitter.h"
#include "engine/io/process_runner.h"
#include "engine/lua/lua_flow_support.h"
#include "engine/model/workflow.h"
#include "engine/step_api/http_request.h"
#include "engine/step_api/step_context.h"

namespace flowrun {

std::string arg_string(lua_State* L, int index, const char* what) {
  if (lua_type(L, index) != LUA_TSTRING && lua_type(L, index) != LUA_TNUMBER)
    throw StepError::permanent(std::string(what) + " must be a string");
  size_t len = 0;
  const char* s = lua_tolstring(L, index, &len);
  return std::string(s, len);
}

std::string lua_caller(lua_State* L) {
  luaL_where(L, 1);
  std::string w = lua_tostring(L, -1);
  lua_pop(L, 1);
  return w;
}

namespace {

int flow_log(lua_State* L, FlowRuntime& rt) {
  std::string message = luaL_tolstring(L, 1, nullptr);
  lua_pop(L, 1);
  std::string level = lua_isnoneornil(L, 2) ? "info" : arg_string(L, 2, "log level");
  auto parsed = parse_log_level(level);
  if (!parsed) throw StepError::permanent("unknown log level '" + level + "'");
  rt.ctx->log().log(*parsed, message);
  return 0;
}

int flow_print(lua_State* L, FlowRuntime& rt) {
  // Every argument becomes a string first: __tostring may raise, and no C++ object lives yet.
  const int n = lua_gettop(L);
  for (int i = 1; i <= n; ++i) luaL_tolstring(L, i, nullptr);
  std::string line;
  for (int i = 1; i <= n; ++i) {
    size_t len = 0;
    const char* s = lua_tolstring(L, n + i, &len);
    if (i > 1) line += '\t';
    line.append(s, len);
  }
  rt.ctx->log().info(line);
  return 0;
}

int flow_fail(lua_State* L, FlowRuntime&) {
  std::string message = lua_isnoneornil(L, 1) ? "failed" : arg_string(L, 1, "message");
  std::string kind_name = lua_isnoneornil(L, 2) ? "permanent" : arg_string(L, 2, "kind");
  auto kind = parse_error_kind(kind_name);
  if (!kind) throw StepError::permanent("flow.fail: unknown kind '" + kind_name + "' (transient, permanent, timeout)");
  throw StepError(*kind, message);
}

int flow_sleep(lua_State* L, FlowRuntime& rt) {
  std::optional<Duration> d;
  if (lua_type(L, 1) == LUA_TNUMBER)
    d = json_to_duration(Json(lua_tonumber(L, 1)));
  else if (lua_type(L, 1) == LUA_TSTRING)
    d = parse_duration(lua_tostring(L, 1));
  if (!d) throw StepError::permanent("flow.sleep takes seconds or a duration such as \"5s\"");
  rt.ctx->sleep(*d);
  return 0;
}

int flow_env(lua_State* L, FlowRuntime&) {
  std::string name = arg_string(L, 1, "variable name");
  const char* value = std::getenv(name.c_str());
  if (value)
    lua_pushstring(L, value);
  else
    lua_pushnil(L);
  return 1;
}

int flow_json_encode(lua_State* L, FlowRuntime& rt) {
  std::string text = rt.lua->to_json(1).dump();
  lua_pushlstring(L, text.data(), text.size());
  return 1;
}

int flow_json_decode(lua_State* L, FlowRuntime& rt) {
  std::string text = arg_string(L, 1, "JSON text");
  Json value = parse_json_limited(text);
  if (value.is_discarded()) throw StepError::permanent("flow.json.decode: not valid JSON");
  rt.lua->push_json(value);
  return 1;
}

int flow_http(lua_State* L, FlowRuntime& rt) {
  if (lua_type(L, 1) != LUA_TTABLE) throw StepError::permanent("flow.http takes a table {url=..., method=...}");
  Json req = rt.lua->to_json(1);
  HttpRequest request = request_from_json(req, "GET");
  if (request.url.empty()) throw StepError::permanent("flow.http: url is required");
  if (req.contains("timeout")) request.timeout = json_to_duration(req["timeout"]).value_or(request.timeout);
  request.timeout = rt.ctx->bounded(request.timeout);
  HttpResponse response = rt.ctx->services().http.send(request, rt.ctx->cancel());
  Json out = {{"status", response.status}, {"headers", response.headers}, {"body", response.body}};
  Json parsed = parse_json_limited(response.body);
  if (!parsed.is_discarded()) out["json"] = parsed;
  if (auto ra = parse_retry_after(response)) out["retry_after"] = static_cast<double>(ra->count()) / 1000.0;
  rt.lua->push_json(out);
  return 1;
}

int flow_exec(lua_State* L, FlowRuntime& rt) {
  if (lua_type(L, 1) != LUA_TTABLE) throw StepError::permanent("flow.exec takes an argument list {\"cmd\", \"arg\"}");
  Json argv = rt.lua->to_json(1);
  Json opts = lua_type(L, 2) == LUA_TTABLE ? rt.lua->to_json(2) : Json::object();
  ProcessSpec spec;
  if (!argv.is_array() || argv.empty()) throw StepError::permanent("flow.exec: the argument list is empty");
  for (const auto& a : argv) spec.argv.push_back(a.is_string() ? a.get<std::string>() : a.dump());
  const Json env = opts.value("env", Json::object());
  for (const auto& [k, v] : env.items()) spec.env[k] = v.is_string() ? v.get<std::string>() : v.dump();
  spec.cwd = opts.value("cwd", "");
  if (opts.contains("stdin")) spec.stdin_data = opts["stdin"].get<std::string>();
  std::optional<Duration> timeout = opts.contains("timeout") ? json_to_duration(opts["timeout"]) : std::nullopt;
  spec.timeout = timeout ? rt.ctx->bounded(*timeout) : rt.ctx->remaining();
  ProcessResult r = rt.ctx->services().processes.run(spec, rt.ctx->cancel());
  if (r.timed_out) throw StepError::timeout("flow.exec: " + spec.argv[0] + " timed out");
  rt.lua->push_json({{"exit_code", r.exit_code}, {"stdout", r.out}, {"stderr", r.err}});
  return 1;
}

// flow.http_lines(request, on_line): streams the response body to on_line one line at a time
// (a JSONL result file of hundreds of MB never sits in memory). With request.jsonl = true each
// non-blank line arrives decoded as a table. A status other than 2xx fails before any line is
// handed over (429 and 5xx transient, with the server's Retry-After); an error in on_line stops
// the download and propagates. Returns {status, lines}.
int flow_http_lines(lua_State* L, FlowRuntime& rt) {
  if (lua_type(L, 1) != LUA_TTABLE || lua_type(L, 2) != LUA_TFUNCTION)
    throw StepError::permanent("flow.http_lines takes a request table and a function(line)");
  Json spec = rt.lua->to_json(1);
  const bool jsonl = spec.value("jsonl", false);
  spec.erase("jsonl");
  HttpRequest request = request_from_json(spec, "GET");
  if (request.url.empty()) throw StepError::permanent("flow.http_lines: url is required");
  // A large download takes as long as it takes: bounded by the step's time, not by 60 s.
  auto timeout = spec.contains("timeout") ? json_to_duration(spec["timeout"]) : std::nullopt;
  request.timeout = timeout ? rt.ctx->bounded(*timeout) : rt.ctx->remaining().value_or(std::chrono::hours(24));

  LineSplitter splitter;
  std::exception_ptr failure;
  size_t handed = 0;
  auto deliver = [&](std::string_view line) {
    if (jsonl && line.find_first_not_of(" \t") == std::string_view::npos) return;
    lua_pushvalue(L, 2);
    if (jsonl) {
      if (!rt.lua->push_json_text(line)) {
        lua_pop(L, 1);
        throw StepError::permanent("line " + std::to_string(splitter.lines()) + " of " + request.url +
                                   " is not JSON: " + std::string(line.substr(0, 80)));
      }
    } else {
      lua_pushlstring(L, line.data(), line.size());
    }
    rt.lua->protected_call(1, 0);
    ++handed;
  };
  request.on_body = [&](int, std::string_view chunk) {  // only a 2xx body comes here
    try {
      splitter.feed(chunk, deliver);
      return true;
    } catch (...) {
      failure = std::current_exception();
      return false;
    }
  };
  HttpResponse response;
  try {
    response = send_expecting(rt.ctx->services().http, request, rt.ctx->cancel(),
                              {.what = "GET " + request.url, .reason = ReasonInMessage::kAlways});
  } catch (...) {
    if (failure) std::rethrow_exception(failure);  // on_line's error, not the aborted transfer's
    throw;
  }
  if (failure) std::rethrow_exception(failure);
  splitter.finish(deliver);
  rt.lua->push_json({{"status", response.status}, {"lines", handed}});
  return 1;
}

}  // namespace

void push_flow_api(lua_State* L, FlowRuntime* rt) {
  lua_newtable(L);
  set_function(L, rt, "log", trampoline<flow_log>);
  set_function(L, rt, "fail", trampoline<flow_fail>);
  set_function(L, rt, "sleep", trampoline<flow_sleep>);
  set_function(L, rt, "env", trampoline<flow_env>);
  set_function(L, rt, "http", trampoline<flow_http>);
  set_function(L, rt, "exec", trampoline<flow_exec>);
  set_function(L, rt, "http_lines", trampoline<flow_http_lines>);
  add_sql_api(L, rt);
  lua_newtable(L);
  set_function(L, rt, "encode", trampoline<flow_json_encode>);
  set_function(L, rt, "decode", trampoline<flow_json_decode>);
  lua_setfield(L, -2, "json");
  rt->lua->push_json({{"id", rt->ctx->step().id}, {"path", rt->ctx->path()}, {"attempt", rt->ctx->attempt()}});
  lua_setfield(L, -2, "step");
}

void set_print(lua_State* L, FlowRuntime* rt) {
  lua_pushglobaltable(L);
  set_function(L, rt, "print", trampoline<flow_print>);
  lua_pop(L, 1);
}

}  // namespace flowrun
