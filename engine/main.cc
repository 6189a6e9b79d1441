// flowrun: the command-line front end. Parses arguments, loads and validates the workflow,
// wires the real clock, HTTP client and process runner, and maps the outcome to an exit code:
// 0 success, 1 the workflow failed, 2 bad usage or an invalid workflow, 130 stopped by a signal.
#include <CLI/CLI.hpp>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <iostream>
#include <random>
#include <thread>

#include "engine/cli_output.h"
#include "engine/executor.h"
#include "engine/http_client.h"
#include "engine/inputs.h"
#include "engine/loader.h"
#include "engine/logging.h"
#include "engine/lua_step.h"
#include "engine/process_runner.h"
#include "engine/redactor.h"
#include "engine/step_registry.h"
#include "steps/builtin_steps.h"

namespace flowrun {
namespace {

constexpr int kExitOk = 0, kExitFailed = 1, kExitUsage = 2, kExitSignal = 130;

const char* const kOverview = R"(flowrun - declarative workflows with retries, timeouts, polling and cleanup

usage:
  flowrun FILE [--set k=v]... [--dry-run] [--log-file F] [--log-format text|json] [-v|-q]
  flowrun validate FILE...     check workflow files; errors name FILE:LINE:COL
  flowrun steps [--json]       list every step type and its parameters
  flowrun graph FILE           print the step tree as a Mermaid flowchart
  flowrun COMMAND --help       help on one command
  flowrun --version

exit codes: 0 success, 1 the workflow failed, 2 bad usage or invalid workflow, 130 stopped by a signal
)";

// Registry with the built-ins plus the project's scripts/steps/*.lua. Script errors are
// reported but do not stop a workflow that does not use them.
void build_registry(StepRegistry& registry, const std::filesystem::path& root) {
  register_builtin_steps(registry);
  for (const auto& error : register_lua_step_types(registry, root / "scripts" / "steps", root))
    std::cerr << "warning: Lua step type not loaded: " << error << "\n";
}

bool print_diagnostics(const LoadResult& result) {
  for (const auto& d : result.diagnostics.items()) std::cerr << format_diagnostic(d, result.source);
  return result.diagnostics.empty();
}

std::string new_run_id() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  std::random_device rd;
  char suffix[8];
  std::snprintf(suffix, sizeof suffix, "%04x", static_cast<unsigned>(rd() & 0xffff));
  return std::string(stamp) + "-" + suffix;
}

// Turns SIGINT/SIGTERM into cancellation on a thread of its own (a signal handler may not
// take locks). First signal: stop the steps, still run finally. Second: stop finally too.
// Third: exit at once.
class SignalWatcher {
 public:
  SignalWatcher(CancelToken& steps, CancelToken& cleanup) : steps_(steps), cleanup_(cleanup) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGUSR1);  // our own wake-up for shutdown
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    thread_ = std::thread([this] { loop(); });
  }
  ~SignalWatcher() {
    stopping_ = true;
    pthread_kill(thread_.native_handle(), SIGUSR1);
    thread_.join();
  }
  bool interrupted() const { return count_ > 0; }

 private:
  void loop() {
    for (;;) {
      int sig = 0;
      if (sigwait(&set_, &sig) != 0) continue;
      if (sig == SIGUSR1 && stopping_) return;
      if (sig == SIGUSR1) continue;
      int n = ++count_;
      const char* name = sig == SIGINT ? "SIGINT" : "SIGTERM";
      if (n == 1) {
        std::cerr << "\n" << name << ": stopping; finally steps still run (press Ctrl+C again to skip them)\n";
        steps_.cancel(std::string("interrupted by ") + name);
      } else if (n == 2) {
        std::cerr << "\n" << name << " again: stopping the cleanup too (once more exits at once)\n";
        cleanup_.cancel(std::string("interrupted twice by ") + name);
      } else {
        _exit(kExitSignal);
      }
    }
  }
  CancelToken& steps_;
  CancelToken& cleanup_;
  sigset_t set_;
  std::thread thread_;
  std::atomic<int> count_{0};
  std::atomic<bool> stopping_{false};
};

int cmd_validate(int argc, char** argv) {
  CLI::App app{"Check workflow files without running them; every error names FILE:LINE:COL", "flowrun validate"};
  std::vector<std::string> files;
  app.add_option("files", files, "workflow files")->required();
  CLI11_PARSE(app, argc, argv);
  bool all_ok = true;
  for (const auto& file : files) {
    StepRegistry registry;
    build_registry(registry, find_project_root(file));
    LoadResult result = load_workflow_file(file, registry);
    if (print_diagnostics(result)) {
      std::cout << file << ": ok (" << result.workflow->steps.size() << " steps)\n";
    } else {
      std::cerr << file << ": " << result.diagnostics.size() << " error(s)\n";
      all_ok = false;
    }
  }
  return all_ok ? kExitOk : kExitUsage;
}

int cmd_steps(int argc, char** argv) {
  CLI::App app{"List every step type with its parameters", "flowrun steps"};
  bool json = false;
  std::string root = ".";
  app.add_flag("--json", json, "machine-readable output");
  app.add_option("--project", root, "project root whose scripts/steps/*.lua are included (default: .)");
  CLI11_PARSE(app, argc, argv);
  StepRegistry registry;
  build_registry(registry, root);
  if (json) std::cout << step_catalogue_json(registry).dump(2) << "\n";
  else std::cout << step_catalogue(registry);
  return kExitOk;
}

int cmd_graph(int argc, char** argv) {
  CLI::App app{"Print a workflow's step tree as a Mermaid flowchart", "flowrun graph"};
  std::string file;
  app.add_option("file", file, "workflow file")->required();
  CLI11_PARSE(app, argc, argv);
  StepRegistry registry;
  build_registry(registry, find_project_root(file));
  LoadResult result = load_workflow_file(file, registry);
  if (!print_diagnostics(result)) return kExitUsage;
  std::cout << workflow_graph(*result.workflow);
  return kExitOk;
}

int cmd_run(int argc, char** argv) {
  CLI::App app{"Run a workflow", "flowrun"};
  std::string file, log_file, log_format = "text";
  std::vector<std::string> sets;
  bool dry_run = false, verbose = false, quiet = false;
  app.add_option("file", file, "workflow file")->required();
  app.add_option("--set", sets, "override an input: --set name=value (repeatable)")->take_all();
  app.add_flag("--dry-run", dry_run, "print each step with its resolved parameters; run nothing with side effects");
  app.add_option("--log-file", log_file, "also write the log (at debug level) to this file");
  app.add_option("--log-format", log_format, "text (default) or json (one object a line)")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_flag("-v,--verbose", verbose, "debug messages, and every step in the summary");
  app.add_flag("-q,--quiet", quiet, "warnings and errors only");
  app.add_flag_callback("--version", [] { std::cout << "flowrun " FLOWRUN_VERSION "\n"; std::exit(0); }, "print the version");
  CLI11_PARSE(app, argc, argv);

  std::map<std::string, std::string> overrides;
  for (const auto& s : sets) {
    auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "flowrun: --set expects name=value, got '" << s << "'\n";
      return kExitUsage;
    }
    overrides[s.substr(0, eq)] = s.substr(eq + 1);
  }

  auto root = find_project_root(file);
  StepRegistry registry;
  build_registry(registry, root);
  LoadResult loaded = load_workflow_file(file, registry);
  if (!print_diagnostics(loaded)) return kExitUsage;
  const Workflow& workflow = *loaded.workflow;

  Diagnostics input_problems;
  Json inputs = resolve_inputs(workflow, overrides, input_problems);
  if (!input_problems.empty()) {
    for (const auto& d : input_problems.items()) std::cerr << format_diagnostic(d, loaded.source);
    return kExitUsage;
  }

  Redactor redactor;
  std::vector<std::string> missing_secrets;
  for (const auto& name : workflow.secrets) {
    if (const char* v = std::getenv(name.c_str())) redactor.add_secret(v);
    else missing_secrets.push_back(name);
  }

  LogOptions log_options;
  log_options.format = log_format == "json" ? LogOptions::Format::kJson : LogOptions::Format::kText;
  log_options.console_level = verbose ? LogLevel::kDebug : quiet ? LogLevel::kWarn : LogLevel::kInfo;
  log_options.file = log_file;
  std::unique_ptr<LogHub> logs;
  try {
    logs = std::make_unique<LogHub>(log_options, redactor);
  } catch (const std::exception& e) {
    std::cerr << "flowrun: cannot open log file " << log_file << ": " << e.what() << "\n";
    return kExitUsage;
  }
  for (const auto& name : missing_secrets)
    logs->logger(workflow.name).warn("secret " + name + " is not set in the environment");

  RealClock clock;
  CurlHttpClient http;
  SystemProcessRunner processes;
  SystemRandom random;
  Services services{http, processes, clock, redactor, root};
  ExecutorOptions options;
  options.run_id = new_run_id();
  options.dry_run = dry_run;
  options.print = [](const std::string& line) { std::cout << line << "\n" << std::flush; };

  CancelToken cleanup_cancel;
  CancelToken cancel(cleanup_cancel);
  RunResult result;
  {
    SignalWatcher signals(cancel, cleanup_cancel);
    Executor executor(workflow, registry, services, random, *logs, options);
    result = executor.run(inputs, cancel, cleanup_cancel);
  }
  logs->flush();
  if (!dry_run) std::cout << redactor.redact(run_summary(result, options.run_id, verbose)) << std::flush;
  switch (result.status) {
    case RunStatus::kSucceeded: return kExitOk;
    case RunStatus::kFailed: return kExitFailed;
    case RunStatus::kCancelled: return kExitSignal;
  }
  return kExitFailed;
}

}  // namespace
}  // namespace flowrun

int main(int argc, char** argv) {
  using namespace flowrun;
  signal(SIGPIPE, SIG_IGN);  // a child that closes its stdin must not kill us
  if (argc < 2) {
    std::cerr << kOverview;
    return kExitUsage;
  }
  std::string first = argv[1];
  if (first == "-h" || first == "--help" || first == "help") {
    std::cout << kOverview;
    return kExitOk;
  }
  if (first == "--version" || first == "-V") {
    std::cout << "flowrun " FLOWRUN_VERSION "\n";
    return kExitOk;
  }
  try {
    if (first == "validate") return cmd_validate(argc - 1, argv + 1);
    if (first == "steps") return cmd_steps(argc - 1, argv + 1);
    if (first == "graph") return cmd_graph(argc - 1, argv + 1);
    if (first == "run") return cmd_run(argc - 1, argv + 1);
    return cmd_run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "flowrun: " << e.what() << "\n";
    return kExitFailed;
  }
}
