#include <algorithm>

#include "engine/io/process_runner.h"
#include "engine/io/step_error.h"
#include "engine/step_api/execution_recorder.h"
#include "engine/step_api/step_context.h"
#include "steps/basic/basic_steps.h"

namespace flowrun {
namespace {

// Splits "a 'b c' \"d\"" into words the way a shell would, without running one: no
// variables, globs, pipes or redirections. Throws on an unclosed quote.
std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quote) {
      if (c == quote)
        quote = 0;
      else if (c == '\\' && quote == '"' && i + 1 < text.size())
        word += text[++i];
      else
        word += c;
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < text.size()) {
      word += text[++i];
      in_word = true;
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (quote) throw StepError::permanent("unclosed quote in command: " + text);
  if (in_word) words.push_back(std::move(word));
  return words;
}

std::string last_line(const std::string& text) {
  auto end = text.find_last_not_of("\r\n");
  if (end == std::string::npos) return "";
  auto start = text.find_last_of('\n', end);
  return text.substr(start == std::string::npos ? 0 : start + 1,
                     end - (start == std::string::npos ? 0 : start + 1) + 1);
}

// Records the program's process group in the run's journal before the program starts, so a
// later resume or cancel can stop it if flowrun dies; clears it once the group is gone.
void record_process_group(const StepContext& ctx, ProcessSpec& spec) {
  ExecutionRecorder* recorder = ctx.services().recorder;
  if (!recorder) return;
  std::string path = ctx.path();
  spec.on_started = [recorder, path](int pgid, const std::string& ticks) {
    recorder->process_started(path, pgid, ticks);
  };
  const StepLog& log = ctx.log();
  spec.on_ended = [recorder, path, &log](int pgid) {
    try {
      recorder->process_ended(path, pgid);
    } catch (const std::exception& e) {  // the group is gone; a stale record only costs a check on resume
      log.warn("cannot clear process group " + std::to_string(pgid) + " from the journal: " + e.what());
    }
  };
}

class ExecStep final : public StepType {
 public:
  const StepInfo& info() const override {
    static const StepInfo info{
        .name = "exec",
        .summary = "Run a program from an argument vector (a shell only with shell: true)",
        .params = {
            {"argv", ParamType::kStringOrList, true,
             "the command: a list, or a string split into words without a shell"},
            {"shell", ParamType::kBool, false, "run argv (a string) with /bin/sh -c; off unless asked"},
            {"env", ParamType::kMap, false, "extra environment variables"},
            {"cwd", ParamType::kString, false, "working directory (relative to the project root)"},
            {"stdin", ParamType::kString, false, "text written to the program's standard input"},
            {"timeout", ParamType::kDuration, false, "stop the program (its whole process group) after this long"},
            {"kill_grace", ParamType::kDuration, false,
             "time between SIGTERM and SIGKILL when stopping it (default 10s)"},
            {"ok_exit_codes", ParamType::kList, false, "exit codes that count as success (default [0])"},
            {"parse_json", ParamType::kBool, false, "parse stdout as JSON into outputs.json"},
            {"show_output", ParamType::kBool, false, "log each output line (default true)"}}};
    return info;
  }

  void validate(const Json& with, std::vector<std::pair<std::string, std::string>>& problems) const override {
    bool shell = with.contains("shell") && with["shell"] == true;
    if (with.contains("argv") && with["argv"].is_array() && with["argv"].empty())
      problems.emplace_back("argv", "argv is an empty list");
    if (shell && with.contains("argv") && with["argv"].is_array())
      problems.emplace_back("argv", "with shell: true, argv is one string for /bin/sh -c");
  }

  Json run(StepContext& ctx) const override {
    const Json& with = ctx.with();
    ProcessSpec spec;
    bool shell = ctx.bool_param("shell", false);
    const Json& argv = with.at("argv");
    if (shell) {
      spec.argv = {"/bin/sh", "-c", argv.is_string() ? argv.get<std::string>() : argv.dump()};
    } else if (argv.is_array()) {
      for (const auto& a : argv) spec.argv.push_back(a.is_string() ? a.get<std::string>() : a.dump());
    } else {
      spec.argv = split_words(argv.is_string() ? argv.get<std::string>() : argv.dump());
    }
    if (spec.argv.empty()) throw StepError::permanent("argv is empty");
    // The workflow's and enclosing steps' `env:` (in ctx.env), then this step's `with.env`.
    if (ctx.env)
      for (const auto& [k, v] : ctx.env->items())
        if (v.is_string()) spec.env[k] = v.get<std::string>();
    const Json env = with.value("env", Json::object());
    for (const auto& [k, v] : env.items()) spec.env[k] = v.is_string() ? v.get<std::string>() : v.dump();
    std::string cwd = ctx.string_param("cwd");
    if (!cwd.empty()) {
      std::filesystem::path p(cwd);
      spec.cwd = (p.is_absolute() ? p : ctx.services().project_root / p).string();
    }
    if (with.contains("stdin") && !with["stdin"].is_null()) spec.stdin_data = ctx.string_param("stdin");
    auto timeout = ctx.duration_param("timeout");
    spec.timeout = timeout ? ctx.bounded(*timeout) : ctx.remaining();
    if (ctx.bool_param("show_output", true)) {
      const StepLog& log = ctx.log();
      spec.on_line = [&log](std::string_view line, bool is_stderr) {
        log.info(std::string(is_stderr ? "! " : "| ") + std::string(line));
      };
    }
    if (auto grace = ctx.duration_param("kill_grace")) spec.kill_grace = *grace;
    record_process_group(ctx, spec);
    ProcessResult r = ctx.services().processes.run(spec, ctx.cancel());
    if (r.timed_out) {
      bool step_deadline = !timeout || (ctx.remaining() && *ctx.remaining() <= Duration::zero());
      throw StepError::timeout(spec.argv[0] + " did not finish within " + format_duration(*spec.timeout) +
                               (step_deadline ? "" : " (its timeout)") +
                               (r.outlived ? "; processes it left in the background were still running" : ""));
    }
    if (r.outlived)
      ctx.log().debug(spec.argv[0] + " exited before processes it left in the background; the step waited for them");
    if (r.out_dropped || r.err_dropped)
      ctx.log().warn("output beyond " + std::to_string(spec.capture_limit) + " bytes was not kept (stdout: " +
                     std::to_string(r.out_dropped) + ", stderr: " + std::to_string(r.err_dropped) + " bytes)");
    Json outputs = {{"exit_code", r.exit_code}, {"stdout", r.out}, {"stderr", r.err}};
    if (r.signal) {
      throw StepError::exit(128 + r.signal, spec.argv[0] + " was killed by signal " + std::to_string(r.signal));
    }
    std::vector<int> ok = {0};
    if (with.contains("ok_exit_codes") && with["ok_exit_codes"].is_array())
      ok = with["ok_exit_codes"].get<std::vector<int>>();
    if (std::find(ok.begin(), ok.end(), r.exit_code) == ok.end()) {
      std::string detail = last_line(r.err.empty() ? r.out : r.err);
      throw StepError::exit(r.exit_code, spec.argv[0] + " exited with code " + std::to_string(r.exit_code) +
                                             (detail.empty() ? "" : ": " + detail));
    }
    if (ctx.bool_param("parse_json", false)) {
      Json parsed = parse_json_limited(r.out);
      if (parsed.is_discarded()) throw StepError::permanent(spec.argv[0] + " did not print valid JSON");
      outputs["json"] = parsed;
    }
    return outputs;
  }
};

}  // namespace

std::unique_ptr<StepType> make_exec_step() { return std::make_unique<ExecStep>(); }

}  // namespace flowrun
