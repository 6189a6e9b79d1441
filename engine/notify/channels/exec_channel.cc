#include "engine/notify/channels/exec_channel.h"

#include "engine/io/duration.h"
#include "engine/io/process_runner.h"
#include "engine/io/step_error.h"
#include "engine/io/utf8.h"
#include "engine/notify/channels/channel_util.h"

namespace flowrun {
namespace {

constexpr Duration kDefaultTimeout = std::chrono::seconds(30);
constexpr size_t kStderrTail = 500;  // bytes of stderr an error message keeps

bool is_expression(const Json& v) { return v.is_string() && v.get<std::string>().find("${{") != std::string::npos; }

// target.timeout as "30s" or a number of seconds; nullopt when it is neither.
std::optional<Duration> timeout_of(const Json& target) {
  if (!target.is_object() || !target.contains("timeout")) return kDefaultTimeout;
  const Json& t = target["timeout"];
  if (t.is_string()) return parse_duration(t.get<std::string>());
  if (t.is_number() && t.get<double>() > 0 && t.get<double>() < 86'400)
    return Duration(static_cast<long long>(t.get<double>() * 1000));
  return std::nullopt;
}

std::string payload_string(const Json& payload, const char* key) {
  return payload.is_object() && payload.contains(key) && payload[key].is_string() ? payload[key].get<std::string>()
                                                                                  : "";
}

// The program's name only: its arguments may hold secrets.
std::string program_name(const std::string& argv0) {
  auto slash = argv0.rfind('/');
  return cut_utf8(slash == std::string::npos ? argv0 : argv0.substr(slash + 1), 80);
}

class ExecChannel final : public Channel {
 public:
  void deliver(const Json& target, const Json& payload, ChannelServices& services) const override {
    for (const std::string& problem : check(target)) throw StepError::permanent("exec: " + problem);
    ProcessSpec spec;
    for (const Json& arg : target["argv"]) spec.argv.push_back(arg.get<std::string>());
    spec.stdin_data = dump_json(payload) + "\n";
    spec.timeout = *timeout_of(target);
    spec.kill_grace = std::chrono::seconds(2);
    spec.capture_limit = 64 << 10;
    spec.env["FLOWRUN_EVENT"] = payload_string(payload, "event");
    spec.env["FLOWRUN_RUN_ID"] = payload_string(payload, "run");
    const std::string what = "exec " + program_name(spec.argv[0]);
    CancelToken never;
    const CancelToken& cancel = services.cancel ? *services.cancel : never;
    ProcessResult result;
    rethrow_scrubbed([&] { result = services.processes.run(spec, cancel); }, what, {}, "");
    if (result.exit_code == 0 && !result.timed_out) return;
    std::string why = result.timed_out        ? "timed out after " + format_duration(*spec.timeout)
                      : result.exit_code >= 0 ? "exited " + std::to_string(result.exit_code)
                                              : "killed by signal " + std::to_string(result.signal);
    std::string tail = tail_utf8(result.err, kStderrTail);
    while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r' || tail.back() == ' ')) tail.pop_back();
    throw StepError::transient(what + " " + why + (tail.empty() ? "" : ": " + tail));
  }

  std::vector<std::string> check(const Json& target) const override {
    if (!target.is_object()) return {"the channel's settings must be a mapping"};
    std::vector<std::string> problems;
    if (!target.contains("argv")) {
      problems.push_back("argv: an exec channel needs the program and its arguments, a list of strings");
    } else {
      const Json& argv = target["argv"];
      bool ok = argv.is_array() && !argv.empty();
      if (argv.is_array())
        for (const Json& a : argv) ok = ok && a.is_string();
      if (ok && argv[0].get<std::string>().empty()) ok = false;
      if (!ok) problems.push_back("argv: must be a non-empty list of strings, the program first (no shell is used)");
    }
    if (target.contains("timeout") && !is_expression(target["timeout"]) && !timeout_of(target))
      problems.push_back("timeout: must be a duration such as \"30s\"");
    return problems;
  }
};

}  // namespace

const Channel& exec_channel() {
  static const ExecChannel channel;
  return channel;
}

}  // namespace flowrun
