// `wait-for-marker`: follow a log (an instance's, a file, a URL or a command's output) until a
// marker line appears; capture values from it, fail on known error lines, show progress, and
// notice an instance that stopped, exited or vanished first. The step's parameters and checks
// live here; the poller (marker_poller) puts together a log source (logs/), the line scanner
// and instance recovery.
#include "engine/io/step_error.h"
#include "engine/io/user_regex.h"
#include "engine/step_api/expressions.h"
#include "engine/step_api/step_context.h"
#include "steps/instance/instance_steps.h"
#include "steps/instance/log_capture.h"
#include "steps/instance/marker_poller.h"

namespace flowrun {
namespace {

class WaitForMarkerStep final : public StepType {
 public:
  const StepInfo& info() const override {
    static const StepInfo info = [] {
      StepInfo i{.name = "wait-for-marker",
                 .summary = "Follow a log until a marker line appears; capture values, fail on error lines",
                 .params = provider_param_specs(),
                 .poller = true,
                 .default_interval = std::chrono::seconds(15),
                 .default_timeout = std::chrono::hours(2)};
      i.params.insert(
          i.params.end(),
          {{"marker", ParamType::kAny, true, "the success line: a substring, or {regex: \"...\"}"},
           {"instance", ParamType::kAny, false, "follow this instance's log (provision's outputs.instance)"},
           {"file", ParamType::kString, false, "or follow a file"},
           {"url", ParamType::kString, false, "or follow a URL's text"},
           {"command", ParamType::kList, false, "or follow what a command prints (argument vector)"},
           {"capture", ParamType::kMap, false,
            "NAME: regex, {pattern, validate, required} or a list of {pattern, validate}; the last accepted value "
            "wins"},
           {"fail_on", ParamType::kList, false, "lines that fail the step at once (substrings or {regex})"},
           {"progress", ParamType::kString, false,
            "regex: (done)/(total) or (percent), shown as a progress bar instead of the line"},
           {"context_lines", ParamType::kInteger, false, "log lines before a failure kept in its message (default 20)"},
           {"log_file", ParamType::kString, false, "append every log line read to this file (created 0600)"},
           {"show_logs", ParamType::kString, false,
            "all (default), new (not what was there at the first check) or none"},
           {"prefix", ParamType::kString, false, "printed before each log line (default \"| \")"},
           {"tail", ParamType::kInteger, false, "lines asked for on each check (default 1000)"},
           {"max_recoveries", ParamType::kInteger, false, "re-provision a lost instance this often (default 0: fail)"},
           {"interval", ParamType::kDuration, false, "time between checks (default 15s)"},
           {"threshold", ParamType::kInteger, false, "consecutive checks that must see the marker (default 1)"},
           {"timeout", ParamType::kDuration, false, "give up after (default 2h)"}});
      return i;
    }();
    return info;
  }

  void validate(const Json& with, std::vector<std::pair<std::string, std::string>>& problems) const override {
    validate_provider_params(with, problems);
    int sources = 0;
    for (const char* k : {"instance", "file", "url", "command"}) sources += with.contains(k) ? 1 : 0;
    if (sources != 1)
      problems.emplace_back("marker", "wait-for-marker follows exactly one of instance, file, url, command");
    auto check_regex = [&](const std::string& param, const Json& v) {
      if (!v.is_string() || holds_expression(v)) return;
      if (auto error = UserRegex::syntax_error(v.get<std::string>()))
        problems.emplace_back(param, "'" + v.get<std::string>() + "' is not a valid regex: " + *error +
                                         " (RE2 syntax: no backreferences or lookaround)");
    };
    if (with.contains("marker") && with["marker"].is_object())
      check_regex("marker", with["marker"].value("regex", Json()));
    if (with.contains("progress")) check_regex("progress", with["progress"]);
    if (with.contains("capture") && with["capture"].is_object())
      for (const auto& [name, v] : with["capture"].items())
        for (const Json& re : capture_regexes(v)) check_regex("capture", re);
    if (with.contains("fail_on") && with["fail_on"].is_array())
      for (const auto& v : with["fail_on"])
        if (v.is_object()) check_regex("fail_on", v.value("regex", Json()));
    if (with.contains("show_logs") && with["show_logs"].is_string()) {
      std::string s = with["show_logs"];
      if (s != "all" && s != "new" && s != "none" && s.find("${{") == std::string::npos)
        problems.emplace_back("show_logs", "show_logs is all, new or none, not '" + s + "'");
    }
  }

  std::unique_ptr<Poller> start_polling(StepContext& ctx) const override {
    try {
      return make_marker_poller(ctx);
    } catch (const RegexError& e) {
      throw StepError::permanent(e.what());
    }
  }
};

}  // namespace

std::unique_ptr<StepType> make_wait_for_marker_step() { return std::make_unique<WaitForMarkerStep>(); }

}  // namespace flowrun
