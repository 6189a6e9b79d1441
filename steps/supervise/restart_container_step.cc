// `restart-container`: restart a worker through its runtime's own command line, started from an
// argument vector (no shell): `docker compose [-f FILE] [-p PROJECT] restart [-t N] SERVICE`,
// `docker|podman restart [-t N] CONTAINER`, `systemctl restart UNIT`, or any `command`. Then,
// optionally, wait until a probe says it is healthy.
#include "engine/io/process_runner.h"
#include "engine/io/step_error.h"
#include "engine/io/utf8.h"
#include "engine/step_api/step_context.h"
#include "steps/supervise/probe.h"
#include "steps/supervise/supervise_steps.h"

namespace flowrun {
namespace {

std::vector<std::string> restart_argv(StepContext& ctx) {
  const Json& with = ctx.with();
  std::string runtime = ctx.string_param("runtime", "compose");
  std::vector<std::string> argv;
  auto need = [&](const char* key) {
    std::string v = ctx.string_param(key);
    if (v.empty()) throw StepError::permanent("runtime " + runtime + " needs `" + key + "`");
    return v;
  };
  auto stop_timeout = [&] {
    if (auto t = ctx.number_param("stop_timeout")) {
      argv.push_back("-t");
      argv.push_back(std::to_string(static_cast<long>(*t)));
    }
  };
  if (runtime == "compose") {
    argv = {"docker", "compose"};
    if (auto f = ctx.string_param("file"); !f.empty()) argv.insert(argv.end(), {"-f", f});
    if (auto p = ctx.string_param("project"); !p.empty()) argv.insert(argv.end(), {"-p", p});
    argv.push_back("restart");
    stop_timeout();
    argv.push_back(need("service"));
  } else if (runtime == "docker" || runtime == "podman") {
    argv = {runtime, "restart"};
    stop_timeout();
    argv.push_back(need("container"));
  } else if (runtime == "systemd") {
    argv = {"systemctl", "restart", need("unit")};
  } else if (runtime == "command") {
    for (const Json& a : with.value("argv", Json::array()))
      argv.push_back(a.is_string() ? a.get<std::string>() : a.dump());
    if (argv.empty()) throw StepError::permanent("runtime command needs `argv`");
  } else {
    throw StepError::permanent("unknown runtime '" + runtime + "' (compose, docker, podman, systemd, command)");
  }
  return argv;
}

class RestartContainerStep final : public StepType {
 public:
  const StepInfo& info() const override {
    static const StepInfo info{
        .name = "restart-container",
        .summary = "Restart a worker (compose, docker, podman, systemd or a command); optionally wait until healthy",
        .params = {{"runtime", ParamType::kString, false, "compose (default), docker, podman, systemd or command"},
                   {"service", ParamType::kString, false, "compose: the service"},
                   {"file", ParamType::kString, false, "compose: -f FILE"},
                   {"project", ParamType::kString, false, "compose: -p PROJECT"},
                   {"container", ParamType::kString, false, "docker, podman: the container"},
                   {"unit", ParamType::kString, false, "systemd: the unit"},
                   {"argv", ParamType::kList, false, "command: the argument vector"},
                   {"stop_timeout", ParamType::kInteger, false, "seconds before the container is killed (-t)"},
                   {"cwd", ParamType::kString, false, "working directory (default: the project root)"},
                   {"timeout", ParamType::kDuration, false, "time limit of the restart command (default 2m)"},
                   {"wait_healthy", ParamType::kMap, false, "{probe, until, interval (5s), timeout (2m)}"}}};
    return info;
  }

  Json run(StepContext& ctx) const override {
    ProcessSpec spec;
    spec.argv = restart_argv(ctx);
    std::filesystem::path cwd = ctx.string_param("cwd", ".");
    spec.cwd = (cwd.is_relative() ? ctx.services().project_root / cwd : cwd).string();
    spec.timeout = ctx.bounded(ctx.duration_param("timeout").value_or(std::chrono::minutes(2)));
    spec.on_line = [&ctx](std::string_view line, bool is_stderr) {
      ctx.log().info(std::string(is_stderr ? "! " : "| ") + std::string(line));
    };
    std::string command;
    for (const auto& a : spec.argv) command += (command.empty() ? "" : " ") + a;
    ctx.log().info("restarting: " + command);
    const TimePoint started = ctx.clock().now();
    ProcessResult r = ctx.services().processes.run(spec, ctx.cancel());
    if (r.timed_out) throw StepError::timeout(command + " did not finish within " + format_duration(*spec.timeout));
    if (r.exit_code != 0)
      throw StepError::exit(r.exit_code, command + " exited with " + std::to_string(r.exit_code) +
                                             (r.err.empty() ? "" : ": " + r.err.substr(0, 300)));
    Json out = {{"argv", spec.argv}, {"exit_code", r.exit_code}, {"healthy", nullptr}};
    const Json wait = ctx.with().value("wait_healthy", Json());
    if (wait.is_object()) out["healthy"] = wait_healthy(wait, ctx);
    out["took_s"] = std::chrono::duration<double>(ctx.clock().now() - started).count();
    return out;
  }

 private:
  // Polls the probe until `until` holds. Probe failures are expected while the worker starts.
  static bool wait_healthy(const Json& wait, StepContext& ctx) {
    Duration interval = json_to_duration(wait.value("interval", Json("5s"))).value_or(std::chrono::seconds(5));
    Duration limit = json_to_duration(wait.value("timeout", Json("2m"))).value_or(std::chrono::minutes(2));
    std::string until = wait.value("until", std::string("true"));
    const TimePoint started = ctx.clock().now();
    std::string last;
    for (;;) {
      try {
        Json obs = run_probe(wait.value("probe", Json()), ctx);
        if (probe_condition(until, obs, "wait_healthy `" + until + "`")) {
          ctx.log().info("healthy after " + format_duration(ctx.clock().now() - started));
          return true;
        }
        last = "not yet: " + dump_json(obs);
      } catch (const StepError& e) {
        if (e.kind() != ErrorKind::kTransient) throw;
        last = e.what();
      }
      if (ctx.clock().now() - started + interval > limit)
        throw StepError::timeout("not healthy within " + format_duration(limit) + " (" + last + ")");
      ctx.sleep(interval);
    }
  }
};

}  // namespace

std::unique_ptr<StepType> make_restart_container_step() { return std::make_unique<RestartContainerStep>(); }

}  // namespace flowrun
