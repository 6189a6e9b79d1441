#include "steps/supervise/health_check.h"

#include <filesystem>

#include "engine/io/process_runner.h"
#include "engine/io/step_error.h"
#include "engine/io/utf8.h"
#include "engine/step_api/expressions.h"
#include "engine/step_api/step_context.h"
#include "steps/supervise/probe.h"

namespace flowrun {
namespace {

std::vector<std::string> command_argv(const Json& spec) {
  std::vector<std::string> argv;
  const Json command = spec.value("command", Json());
  if (command.is_array())
    for (const Json& a : command) argv.push_back(a.is_string() ? a.get<std::string>() : a.dump());
  return argv;
}

std::string until_of(const Json& spec) {
  const Json until = spec.value("until", Json());
  return until.is_string() ? until.get<std::string>() : "";
}

Duration duration_or(const Json& spec, const char* key, Duration fallback) {
  const Json v = spec.value(key, Json());
  if (v.is_null() || (v.is_string() && v.get<std::string>().empty())) return fallback;
  auto d = json_to_duration(v);
  if (!d) throw StepError::permanent(std::string("health_check.") + key + " is not a duration: " + v.dump());
  return *d;
}

// The command's verdict: exit 0 within its timeout.
std::optional<std::string> run_command(const Json& spec, const std::vector<std::string>& argv, StepContext& ctx) {
  ProcessSpec p;
  p.argv = argv;
  if (ctx.env)
    for (const auto& [k, v] : ctx.env->items())
      if (v.is_string()) p.env[k] = v.get<std::string>();
  std::filesystem::path cwd = spec.value("cwd", std::string("."));
  p.cwd = (cwd.is_relative() ? ctx.services().project_root / cwd : cwd).string();
  const Duration limit = duration_or(spec, "timeout", std::chrono::seconds(30));
  p.timeout = ctx.bounded(limit);
  std::string command;
  for (const auto& a : argv) command += (command.empty() ? "" : " ") + a;
  ProcessResult r = ctx.services().processes.run(p, ctx.cancel());
  ctx.check_interrupts();
  if (r.timed_out) return command + " did not finish within " + format_duration(*p.timeout);
  if (r.exit_code != 0) {
    std::string why = r.err.empty() ? r.out : r.err;
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    return command +
           (r.signal ? " was killed by signal " + std::to_string(r.signal)
                     : " exited with " + std::to_string(r.exit_code)) +
           (why.empty() ? "" : ": " + why.substr(0, 300));
  }
  return std::nullopt;
}

}  // namespace

bool health_check_configured(const Json& spec) {
  return spec.is_object() && (!command_argv(spec).empty() || !until_of(spec).empty());
}

std::optional<std::string> health_check_problem(const Json& spec) {
  if (spec.is_null()) return std::nullopt;
  if (!spec.is_object()) return "health_check is {command: [argv...], timeout} and/or {until, probe, grace, interval}";
  for (const auto& [key, value] : spec.items())
    if (key != "command" && key != "timeout" && key != "cwd" && key != "until" && key != "probe" && key != "grace" &&
        key != "interval")
      return "health_check has no `" + key + "` (command, timeout, cwd, until, probe, grace, interval)";
  const Json command = spec.value("command", Json());
  if (!command.is_null() && !command.is_array() && !holds_expression(command))
    return "health_check.command is an argument vector: [docker, compose, exec, -T, worker, nvidia-smi]";
  const std::string until = until_of(spec);
  if (!until.empty() && until.find("${{") == std::string::npos)
    if (auto err = condition_syntax_error(until)) return "health_check.until does not parse: " + *err;
  return std::nullopt;
}

HealthCheckResult run_health_check(const Json& spec, const Json& default_probe, StepContext& ctx) {
  HealthCheckResult result;
  const TimePoint started = ctx.clock().now();
  const auto argv = command_argv(spec);
  if (!argv.empty()) {
    if (auto failure = run_command(spec, argv, ctx)) {
      result.detail = *failure;
      return result;
    }
    result.detail = argv[0] + " passed";
  }
  const std::string until = until_of(spec);
  if (until.empty()) {
    result.healthy = true;
    return result;
  }
  const Json probe = spec.contains("probe") && spec["probe"].is_object() ? spec["probe"] : default_probe;
  const Duration grace = duration_or(spec, "grace", std::chrono::minutes(2));
  const Duration interval = std::max(duration_or(spec, "interval", std::chrono::seconds(5)), Duration(1));
  std::string last;
  for (;;) {
    try {
      Json obs = run_probe(probe, ctx);
      result.observation = obs;
      if (probe_condition(until, obs, "health_check.until `" + until + "`")) {
        result.healthy = true;
        result.detail = "`" + until + "` after " + format_duration(ctx.clock().now() - started);
        return result;
      }
      last = "last: " + dump_json(obs);
    } catch (const StepError& e) {
      if (e.kind() != ErrorKind::kTransient && !(e.kind() == ErrorKind::kTimeout && !ctx.cancel().cancelled() &&
                                                 !(ctx.remaining() && *ctx.remaining() <= Duration::zero())))
        throw;
      last = std::string("last: ") + e.what();
    }
    if (ctx.clock().now() - started + interval > grace) {
      result.detail = "`" + until + "` did not hold within " + format_duration(grace) + " (" + last + ")";
      return result;
    }
    ctx.sleep(interval);
  }
}

}  // namespace flowrun
