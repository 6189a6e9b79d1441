// flowrun: the command-line front end. Parses arguments, loads and validates the workflow,
// wires the real clock, HTTP client and process runner, and maps the run's state to an exit code
// (engine/model/run_state.h): 0 succeeded, 1 failed, 2 bad usage or an invalid workflow, 3 partial,
// 130 stopped by a signal.
#include <CLI/CLI.hpp>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <ctime>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "engine/cli/cli_output.h"
#include "engine/runtime/executor.h"
#include "engine/io/http_client.h"
#include "engine/load/inputs.h"
#include "engine/journal/journal.h"
#include "engine/journal/journal_view.h"
#include "engine/load/loader.h"
#include "engine/io/logging.h"
#include "engine/journal/monitor_lock.h"
#include "engine/cli/orphan_processes.h"
#include "engine/lua/lua_step.h"
#include "engine/step_api/poll_workers.h"
#include "engine/io/process_runner.h"
#include "engine/journal/failsafe_recorder.h"
#include "engine/io/redactor.h"
#include "engine/cli/scheduler.h"
#include "engine/cli/service_unit.h"
#include "engine/io/signal_watcher.h"
#include "engine/step_api/step_registry.h"
#include "steps/catalog.h"

namespace flowrun {
namespace {

constexpr int kExitOk = 0, kExitFailed = 1, kExitUsage = 2, kExitSignal = 130;

const char* const kOverview = R"(flowrun - declarative workflows with retries, timeouts, polling and cleanup

usage:
  flowrun FILE [--set k=v]... [--env-file F] [--dry-run] [--log-file F] [--log-format text|json] [-v|-q]
  flowrun FILE --every 5m | --once   run on a schedule (or one tick of it); one monitor per workflow
  flowrun validate FILE...     check workflow files; errors name FILE:LINE:COL
  flowrun steps [--json]       list every step type and its parameters
  flowrun graph FILE           print the step tree as a Mermaid flowchart
  flowrun runs                 recent runs from the journal
  flowrun show RUN             one run's steps, attempts, outputs and durations
  flowrun resume RUN           carry on with a detached, killed or failed run
  flowrun cancel RUN           run the finally steps a run still owes, and mark it cancelled
  flowrun service unit FILE    print a systemd unit that keeps a scheduled workflow running
  flowrun COMMAND --help       help on one command
  flowrun --version

A run ends succeeded, failed, partial (tolerated items or continue_on_error steps failed),
cancelled or detached. A failed finally step fails the run.

Ctrl+C or SIGTERM detaches: the run is saved and flowrun prints how to resume or cancel it
(--on-interrupt cleanup runs the finally steps instead); a second Ctrl+C exits at once.
Runs are journaled in --state-dir (default $FLOWRUN_STATE_DIR or .flowrun).

A scheduled workflow (`schedule: {every: 5m}` or --every) runs a tick, each its own run in the
journal, every period until Ctrl+C or SIGTERM, which cancels the tick in progress and exits 0.

exit codes: 0 succeeded, 1 failed, 2 bad usage, an invalid workflow or another monitor of the
workflow running, 3 partial, 130 stopped by a signal (detached or cancelled)
)";

// With --log-format json every line flowrun writes is a JSON object, errors too.
bool json_output = false;

// An error of the CLI itself (not of a step), on stderr.
void print_error(const std::string& message) {
  if (json_output)
    std::cerr << Json{{"level", "ERROR"}, {"message", message}}.dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
  else
    std::cerr << "flowrun: " << message << "\n";
}

void print_diagnostic(const Diagnostic& d, const std::string& source) {
  if (json_output)
    std::cerr << Json{{"level", "ERROR"}, {"file", d.loc.file}, {"line", d.loc.line}, {"column", d.loc.col},
                      {"message", d.message}, {"hint", d.hint}}
                     .dump(-1, ' ', false, Json::error_handler_t::replace)
              << "\n";
  else
    std::cerr << format_diagnostic(d, source);
}

// Parses a command's arguments. Returns nothing to go on, or the exit code: 0 after --help, 2
// after a usage error (one line naming it, and where to look), never the parser's own codes.
std::optional<int> parse_args(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
    return std::nullopt;
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::string what = e.what();
    std::replace(what.begin(), what.end(), '\n', ' ');
    std::cerr << "flowrun: " << what << "\n  hint: " << app.get_name() << " --help\n";
    return kExitUsage;
  }
}

// Registry with the built-ins plus the project's scripts/steps/*.lua. Script errors are
// reported but do not stop a workflow that does not use them.
void build_registry(StepRegistry& registry, const std::filesystem::path& root) {
  register_builtin_steps(registry);
  for (const auto& error : register_lua_step_types(registry, root / "scripts" / "steps", root))
    print_error("warning: Lua step type not loaded: " + error);
}

// Loads a workflow with the registry of its project, printing its diagnostics to stderr; the
// result holds a workflow only when there were none.
LoadResult load(const std::string& file, StepRegistry& registry) {
  build_registry(registry, find_project_root(file));
  LoadResult result = load_workflow_file(file, registry);
  for (const auto& d : result.diagnostics.items()) print_diagnostic(d, result.source);
  return result;
}

// A redactor knowing the workflow's secrets that are set. (An unset one is named by the step
// that uses it, when that step fails: a run that never needs it hears nothing of it.)
Redactor secrets_redactor(const Workflow& workflow) {
  Redactor redactor;
  for (const auto& name : workflow.secrets)
    if (const char* v = std::getenv(name.c_str()); v && !redactor.add_secret(v)) throw SecretTooShort(name);
  return redactor;
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

int cmd_validate(int argc, char** argv) {
  CLI::App app{"Check workflow files without running them; every error names FILE:LINE:COL", "flowrun validate"};
  std::vector<std::string> files;
  app.add_option("files", files, "workflow files")->required();
  if (auto rc = parse_args(app, argc, argv)) return *rc;
  bool all_ok = true;
  for (const auto& file : files) {
    StepRegistry registry;
    LoadResult result = load(file, registry);
    if (result.diagnostics.empty()) {
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
  if (auto rc = parse_args(app, argc, argv)) return *rc;
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
  if (auto rc = parse_args(app, argc, argv)) return *rc;
  StepRegistry registry;
  LoadResult result = load(file, registry);
  if (!result.diagnostics.empty()) return kExitUsage;
  std::cout << workflow_graph(*result.workflow);
  return kExitOk;
}

// The run's inputs from the workflow and `--set name=value` arguments; nothing (the problems
// printed, each naming the file) when a name is unknown or a value is not of the input's type.
std::optional<Json> inputs_from_sets(const LoadResult& loaded, const std::vector<std::string>& sets,
                                     MissingRequired missing = MissingRequired::kError) {
  std::map<std::string, std::string> overrides;
  for (const auto& s : sets) {
    auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "flowrun: --set expects name=value, got '" << s << "'\n";
      return std::nullopt;
    }
    overrides[s.substr(0, eq)] = s.substr(eq + 1);
  }
  Diagnostics problems;
  Json inputs = resolve_inputs(*loaded.workflow, overrides, problems, missing);
  for (const auto& d : problems.items()) print_diagnostic(d, loaded.source);
  if (!problems.empty()) return std::nullopt;
  return inputs;
}

// Sets the variables of an env file (NAME=value lines; blank lines, `#` comments and an
// `export ` prefix allowed; a value may be quoted) in this process's environment, before any
// thread starts. False, with the file:line on stderr, when a line is not of that form.
bool load_env_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    std::cerr << "flowrun: cannot read --env-file " << path << ": " << std::strerror(errno) << "\n";
    return false;
  }
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    line = line.substr(start);
    if (line.rfind("export ", 0) == 0) line = line.substr(7);
    auto eq = line.find('=');
    std::string name = line.substr(0, eq);
    bool good_name = eq != std::string::npos && eq > 0 &&
                     std::all_of(name.begin(), name.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }) &&
                     !std::isdigit(static_cast<unsigned char>(name[0]));
    if (!good_name) {
      std::cerr << path << ":" << number << ": expected NAME=value\n";
      return false;
    }
    std::string value = line.substr(eq + 1);
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
      value = value.substr(1, value.size() - 2);
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  return true;
}

// Options shared by the commands that execute a run.
struct ExecOptions {
  std::string log_file;
  std::string log_format = "text";
  bool verbose = false;
  bool quiet = false;
  std::string on_interrupt = "detach";
  std::string state_dir;
  std::string env_file;
};

void add_state_dir(CLI::App& app, std::string& state_dir) {
  const char* env = std::getenv("FLOWRUN_STATE_DIR");
  state_dir = env && *env ? env : ".flowrun";
  app.add_option("--state-dir", state_dir, "where the journal lives (default: $FLOWRUN_STATE_DIR or .flowrun)");
}

void add_exec_options(CLI::App& app, ExecOptions& o) {
  app.add_option("--log-file", o.log_file, "also write the log (at debug level) to this file");
  app.add_option("--log-format", o.log_format, "text (default) or json (one object a line)")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_flag("-v,--verbose", o.verbose, "debug messages, and every step in the summary");
  app.add_flag("-q,--quiet", o.quiet, "warnings and errors only");
  app.add_option("--on-interrupt", o.on_interrupt,
                 "on Ctrl+C or SIGTERM: detach (default: save the run for resume or cancel) or cleanup (run finally)")
      ->check(CLI::IsMember({"detach", "cleanup"}));
  app.add_option("--env-file", o.env_file, "read NAME=value lines into the environment first (secrets, env)");
  add_state_dir(app, o.state_dir);
}

std::unique_ptr<Journal> open_journal(const std::string& state_dir) {
  try {
    return Journal::open(state_dir);
  } catch (const JournalError& e) {
    print_error(e.what());
    return nullptr;
  }
}

enum class Mode { kRun, kResume, kCancel, kDryRun };

// The end of a run on stdout: the summary (none with -q when the run succeeded), or one JSON
// object with --log-format json.
void print_summary(const RunResult& result, RunState state, const std::string& run_id, const ExecOptions& o,
                   const Redactor& redactor) {
  if (o.log_format == "json") {
    std::cout << redactor.redact_json(run_summary_json(result, state, run_id)).dump(-1, ' ', false, Json::error_handler_t::replace)
              << "\n" << std::flush;
    return;
  }
  if (o.quiet && state == RunState::kSucceeded) return;
  std::cout << redactor.redact(run_summary(result, state, run_id, o.verbose)) << std::flush;
}

// How to carry on with a detached run, on stderr.
void print_detached(const std::string& run_id, const Journal& journal, const ExecOptions& o) {
  if (o.log_format == "json") {
    std::cerr << Json{{"event", "detached"}, {"run", run_id}, {"journal", journal.path()},
                      {"resume", "flowrun resume " + run_id}, {"cancel", "flowrun cancel " + run_id}}
                     .dump()
              << "\n";
    return;
  }
  std::cerr << "\nrun " << run_id << " detached; what it did is saved in " << journal.path() << "\n"
            << "  resume it:  flowrun resume " << run_id << "\n"
            << "  cancel it:  flowrun cancel " << run_id << "   (runs its pending finally steps)\n";
}

// The log sinks for a command's options; null (with the reason on stderr) when the log file
// cannot be opened.
std::unique_ptr<LogHub> open_logs(const ExecOptions& o, const Redactor& redactor) {
  LogOptions log_options;
  log_options.format = o.log_format == "json" ? LogOptions::Format::kJson : LogOptions::Format::kText;
  log_options.console_level = o.verbose ? LogLevel::kDebug : o.quiet ? LogLevel::kWarn : LogLevel::kInfo;
  log_options.file = o.log_file;
  try {
    return std::make_unique<LogHub>(log_options, redactor);
  } catch (const std::exception& e) {
    std::cerr << "flowrun: cannot open log file " << o.log_file << ": " << e.what() << "\n";
    return nullptr;
  }
}

// What a scheduled monitor keeps across its ticks: one signal watcher (cancelling `stop`) and
// one set of log sinks.
struct Monitor {
  CancelToken& stop;
  LogHub& logs;
};

// Runs (or resumes, or cleans up) one run of a loaded workflow and returns the exit code.
// Under a monitor, a signal cancels the tick through monitor->stop; otherwise this run watches
// the signals itself.
int execute(const Workflow& workflow, const Json& inputs, const StepRegistry& registry, Journal* journal,
            const std::string& run_id, Mode mode, const ExecOptions& o, Monitor* monitor = nullptr) {
  Redactor redactor = secrets_redactor(workflow);
  std::unique_ptr<LogHub> own_logs;
  if (!monitor) {
    own_logs = open_logs(o, redactor);
    if (!own_logs) return kExitUsage;
  }
  LogHub* logs = monitor ? &monitor->logs : own_logs.get();

  CancelToken finally_cancel;
  CancelToken cancel(monitor ? monitor->stop : finally_cancel);
  std::optional<SignalWatcher> signals;
  if (!monitor) signals.emplace(cancel, o.log_format == "json");  // before any other thread starts

  std::unique_ptr<RunLease> lease;
  std::unique_ptr<ExecutionRecorder> recorder;
  const FailsafeRecorder* failsafe_recorder = nullptr;
  if (journal) {
    try {
      lease = std::make_unique<RunLease>(*journal, run_id);
    } catch (const std::exception& e) {
      print_error(e.what());
      return kExitUsage;
    }
    auto failsafe = std::make_unique<FailsafeRecorder>(journal->recorder(run_id, redactor), journal->path(), run_id,
                                                       logs->logger(workflow.name));
    failsafe_recorder = failsafe.get();
    recorder = std::move(failsafe);
    if (mode == Mode::kResume || mode == Mode::kCancel)  // before anything of the run starts again
      stop_orphaned_process_groups(*journal, run_id, std::chrono::seconds(10), logs->logger(workflow.name));
    try {
      journal->set_run_status(run_id, to_string(RunState::kRunning));
    } catch (const std::exception& e) {
      print_error(journal_write_hint(journal->path(), run_id, e.what()));
      return kExitFailed;
    }
  }

  RealClock clock;
  CurlHttpClient http;
  SystemProcessRunner processes;
  SystemRandom random;
  PollWorkers poll_workers;
  Services services{http, processes, clock, redactor, workflow.project_root, o.state_dir, &poll_workers};
  services.recorder = recorder.get();
  ExecutorOptions options;
  options.run_id = run_id;
  options.dry_run = mode == Mode::kDryRun;
  options.print = [json = o.log_format == "json"](const std::string& line) {
    if (json) std::cout << Json{{"event", "dry_run"}, {"text", line}}.dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
    else std::cout << line << "\n";
    std::cout << std::flush;
  };
  options.recorder = recorder.get();
  // A monitor's tick is not resumed later (the next tick does its work), so a signal cancels it
  // and runs its finally steps instead of detaching.
  options.detach_on_cancel = !monitor && o.on_interrupt == "detach" && mode != Mode::kCancel;
  options.finally_only = mode == Mode::kCancel;

  Executor executor(workflow, registry, services, random, *logs, options);
  RunResult result = executor.run(inputs, cancel, finally_cancel);
  logs->flush();

  RunState state = result.status;
  if (mode == Mode::kCancel && state != RunState::kFailed) state = RunState::kCancelled;
  if (journal && !record_run_end(*journal, run_id, to_string(state), redactor.redact(result.error), failsafe_recorder)) {
    if (mode != Mode::kDryRun) print_summary(result, state, run_id, o, redactor);
    return kExitFailed;
  }
  if (mode != Mode::kDryRun) print_summary(result, state, run_id, o, redactor);
  if (state == RunState::kDetached && journal) print_detached(run_id, *journal, o);
  if (mode == Mode::kCancel) return state == RunState::kFailed ? kExitFailed : kExitOk;
  return exit_code_for(state);
}

// Records a new run of `workflow` in the journal and executes it.
int start_run(const LoadResult& loaded, const std::string& file, const Json& inputs, const StepRegistry& registry,
              Journal& journal, const ExecOptions& o, Monitor* monitor = nullptr) {
  const Workflow& workflow = *loaded.workflow;
  RunRow row;
  row.id = new_run_id();
  row.workflow_path = std::filesystem::absolute(file).string();
  row.workflow_name = workflow.name;
  row.content_hash = content_hash(loaded.source);
  // A secret passed through --set must not reach the journal either.
  row.inputs = secrets_redactor(workflow).redact_json(inputs);
  row.status = to_string(RunState::kRunning);
  row.started_ms = wall_clock_ms();
  try {
    journal.create_run(row);
  } catch (const std::exception& e) {
    // Disk full or a read-only journal before anything ran: say where, and that nothing started.
    const std::string dir = std::filesystem::path(journal.path()).parent_path().string();
    print_error("cannot write the journal " + journal.path() + ": " + e.what() + "; nothing of the run started. Free space on " +
                dir + " (or point --state-dir elsewhere) and run it again");
    return kExitFailed;
  }
  return execute(workflow, inputs, registry, &journal, row.id, Mode::kRun, o, monitor);
}

std::string clock_time_in(Duration d) {
  const auto when = std::chrono::system_clock::now() + std::chrono::ceil<std::chrono::seconds>(d);
  std::time_t at = std::chrono::system_clock::to_time_t(when);
  std::tm tm{};
  localtime_r(&at, &tm);
  char text[16];
  std::strftime(text, sizeof text, "%H:%M:%S", &tm);
  return text;
}

// Ticks until a signal: each tick a run of its own; a failed tick is logged and the next one
// still happens. Old finished ticks are pruned from the journal beyond `keep_runs`.
int run_monitor(const LoadResult& loaded, const std::string& file, const Json& inputs, const StepRegistry& registry,
                Journal& journal, const ExecOptions& o, Duration every, int keep_runs) {
  const Workflow& workflow = *loaded.workflow;
  Redactor redactor = secrets_redactor(workflow);
  auto logs = open_logs(o, redactor);
  if (!logs) return kExitUsage;
  StepLog log = logs->logger(workflow.name);
  CancelToken stop;
  SignalWatcher signals(stop, o.log_format == "json");  // before any other thread starts
  Monitor monitor{stop, *logs};
  RealClock clock;
  int failed = 0;
  log.info("monitoring every " + format_duration(every) + "; Ctrl+C or SIGTERM stops");
  const int ticks = run_on_schedule(
      every, clock, stop,
      [&](int n) {
        const int rc = start_run(loaded, file, inputs, registry, journal, o, &monitor);
        if (rc != kExitOk && !stop.cancelled()) {
          ++failed;
          log.warn("tick " + std::to_string(n) + (rc == exit_code_for(RunState::kPartial) ? " partial" : " failed") +
                   " (exit " + std::to_string(rc) + "); the next tick runs as scheduled");
        }
        try {
          journal.prune_finished_runs(std::filesystem::absolute(file).string(), keep_runs);
        } catch (const std::exception& e) {
          log.warn(std::string("could not prune old runs from the journal: ") + e.what());
        }
      },
      [&](Duration wait) { log.info("next tick at " + clock_time_in(wait) + " (in " + format_duration(wait) + ")"); });
  log.info("stopped after " + std::to_string(ticks) + " tick(s), " + std::to_string(failed) + " failed or partial");
  logs->flush();
  return kExitOk;
}

int cmd_run(int argc, char** argv) {
  CLI::App app{"Run a workflow, once or on a schedule", "flowrun"};
  std::string file, every_text;
  std::vector<std::string> sets;
  bool dry_run = false, once = false;
  int keep_runs = 1000;
  ExecOptions o;
  app.add_option("file", file, "workflow file")->required();
  app.add_option("--set", sets, "override an input: --set name=value (repeatable)")->take_all();
  app.add_flag("--dry-run", dry_run, "print each step with its resolved parameters; run nothing with side effects");
  app.add_option("--every", every_text, "run a tick every period (5m, 30s...) until stopped; overrides `schedule`");
  app.add_flag("--once", once, "run one tick of a scheduled workflow and exit with its result");
  app.add_option("--keep-runs", keep_runs, "finished ticks kept in the journal (default 1000)")
      ->check(CLI::PositiveNumber);
  add_exec_options(app, o);
  if (auto rc = parse_args(app, argc, argv)) return *rc;
  json_output = o.log_format == "json";
  if (once && !every_text.empty()) {
    std::cerr << "flowrun: --once and --every exclude each other\n";
    return kExitUsage;
  }
  std::optional<Duration> every;
  if (!every_text.empty()) {
    every = parse_duration(every_text);
    if (!every || *every <= Duration::zero()) {
      std::cerr << "flowrun: --every expects a period such as 30s or 5m, got '" << every_text << "'\n";
      return kExitUsage;
    }
  }

  if (!o.env_file.empty() && !load_env_file(o.env_file)) return kExitUsage;
  StepRegistry registry;
  LoadResult loaded = load(file, registry);
  if (!loaded.diagnostics.empty()) return kExitUsage;
  const Workflow& workflow = *loaded.workflow;
  // A dry run is how a workflow is first looked at: a required input may still be unknown.
  auto inputs = inputs_from_sets(loaded, sets, dry_run ? MissingRequired::kPlaceholder : MissingRequired::kError);
  if (!inputs) return kExitUsage;
  if (dry_run) return execute(workflow, *inputs, registry, nullptr, new_run_id(), Mode::kDryRun, o);
  if (!every && !once) every = workflow.schedule_every;

  auto journal = open_journal(o.state_dir);
  if (!journal) return kExitUsage;
  // A monitor (scheduled, or one tick of it) runs alone: the lock is the kernel's, so it goes
  // with the process however the process ends.
  std::unique_ptr<MonitorLock> lock;
  if (every || once) {
    std::string holder;
    try {
      lock = MonitorLock::try_acquire(o.state_dir, workflow.name, &holder);
    } catch (const std::exception& e) {
      print_error(e.what());
      return kExitUsage;
    }
    if (!lock) {
      std::cerr << "flowrun: another monitor of " << workflow.name << " is running (" << holder << "); not starting a second\n"
                << "  its lock: " << (std::filesystem::path(o.state_dir) / "locks" / (lock_name(workflow.name) + ".lock")).string()
                << "\n";
      return kExitUsage;
    }
  }
  if (every) return run_monitor(loaded, file, *inputs, registry, *journal, o, *every, keep_runs);
  return start_run(loaded, file, *inputs, registry, *journal, o);
}

// The step ids a recorded path names ("videos[2].finally.destroy" -> videos, destroy).
std::vector<std::string> ids_in_path(const std::string& path) {
  std::vector<std::string> ids;
  std::string part;
  std::istringstream in(path);
  while (std::getline(in, part, '.')) {
    auto bracket = part.find('[');
    if (bracket != std::string::npos) part = part.substr(0, bracket);
    if (!part.empty() && part != "finally") ids.push_back(part);
  }
  return ids;
}

// resume and cancel: reload the recorded workflow, refusing when its step ids changed.
int cmd_continue(int argc, char** argv, Mode mode) {
  const bool resume = mode == Mode::kResume;
  CLI::App app{resume ? "Carry on with a detached, killed or failed run: finished steps are not run again"
                      : "Cancel a run: run the finally steps it still owes, then mark it cancelled",
               resume ? "flowrun resume" : "flowrun cancel"};
  std::string run_id;
  ExecOptions o;
  app.add_option("run", run_id, "run id (see flowrun runs)")->required();
  add_exec_options(app, o);
  if (auto rc = parse_args(app, argc, argv)) return *rc;
  json_output = o.log_format == "json";

  if (!o.env_file.empty() && !load_env_file(o.env_file)) return kExitUsage;
  auto journal = open_journal(o.state_dir);
  if (!journal) return kExitUsage;
  auto run = journal->run(run_id);
  if (!run) {
    std::cerr << "flowrun: no run " << run_id << " in " << journal->path() << " (flowrun runs lists them)\n";
    return kExitUsage;
  }
  const auto state = parse_run_state(run->status);
  if (state == RunState::kSucceeded || state == RunState::kCancelled || state == RunState::kPartial) {
    std::cerr << "flowrun: run " << run_id << " already ended " << run->status << "; nothing to "
              << (resume ? "resume" : "cancel") << "\n"
              << "  hint: start a new run" << (state == RunState::kPartial ? " for the items that failed" : "") << "\n";
    return kExitUsage;
  }
  StepRegistry registry;
  LoadResult loaded = load(run->workflow_path, registry);
  if (!loaded.diagnostics.empty()) return kExitUsage;
  const Workflow& workflow = *loaded.workflow;
  if (content_hash(loaded.source) != run->content_hash) {
    std::set<std::string> ids;
    collect_step_names(workflow.steps, ids);
    collect_step_names(workflow.finally, ids);
    std::set<std::string> missing;
    for (const auto& step : journal->steps(run_id))
      for (const auto& id : ids_in_path(step["path"]))
        if (!ids.count(id)) missing.insert(id);
    if (!missing.empty()) {
      std::cerr << "flowrun: " << run->workflow_path << " changed since run " << run_id
                << " started, and these recorded steps are gone from it:";
      for (const auto& id : missing) std::cerr << " " << id;
      std::cerr << "\n  restore the file as it was, or start a new run\n";
      return kExitUsage;
    }
    std::cerr << "flowrun: warning: " << run->workflow_path << " changed since the run started; its step ids still match\n";
  }
  return execute(workflow, run->inputs, registry, journal.get(), run_id, mode, o);
}

int cmd_runs(int argc, char** argv) {
  CLI::App app{"List recent runs from the journal", "flowrun runs"};
  int limit = 20;
  bool json = false;
  std::string state_dir;
  app.add_option("-n,--limit", limit, "how many (default 20)");
  app.add_flag("--json", json, "machine-readable output");
  add_state_dir(app, state_dir);
  if (auto rc = parse_args(app, argc, argv)) return *rc;
  auto journal = open_journal(state_dir);
  if (!journal) return kExitUsage;
  auto runs = journal->recent_runs(limit);
  if (json) {
    Json out = Json::array();
    for (const auto& r : runs)
      out.push_back({{"id", r.id}, {"workflow", r.workflow_name}, {"path", r.workflow_path}, {"status", r.status},
                     {"started_ms", r.started_ms}, {"owner_pid", r.owner_pid}, {"error", r.error}});
    std::cout << out.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
  } else {
    std::cout << runs_table(runs);
  }
  return kExitOk;
}

int cmd_show(int argc, char** argv) {
  CLI::App app{"Show one run: its steps with status, attempts, outputs and durations", "flowrun show"};
  std::string run_id, state_dir;
  bool json = false;
  app.add_option("run", run_id, "run id")->required();
  app.add_flag("--json", json, "machine-readable output");
  add_state_dir(app, state_dir);
  if (auto rc = parse_args(app, argc, argv)) return *rc;
  auto journal = open_journal(state_dir);
  if (!journal) return kExitUsage;
  auto run = journal->run(run_id);
  if (!run) {
    std::cerr << "flowrun: no run " << run_id << " in " << journal->path() << "\n";
    return kExitUsage;
  }
  auto steps = journal->steps(run_id);
  if (json) {
    std::cout << Json{{"id", run->id}, {"status", run->status}, {"workflow", run->workflow_name}, {"steps", steps},
                      {"events", journal->events(run_id)}}
                     .dump(2, ' ', false, Json::error_handler_t::replace)
              << "\n";
  } else {
    std::cout << run_details(*run, steps);
  }
  return kExitOk;
}

int cmd_service(int argc, char** argv) {
  CLI::App app{"Print a systemd unit that runs a scheduled workflow as a service (install steps: docs/service.md)",
               "flowrun service unit"};
  app.require_subcommand(1);
  CLI::App* unit = app.add_subcommand("unit", "print the unit for FILE on stdout");
  std::string file, every, state_dir, log_file, env_file, user;
  std::vector<std::string> sets;
  bool user_unit = false;
  unit->add_option("file", file, "workflow file")->required();
  unit->add_option("--every", every, "the period, when the workflow has no `schedule`");
  unit->add_option("--set", sets, "inputs passed on to every tick: --set name=value")->take_all();
  unit->add_option("--state-dir", state_dir, "the journal and locks (default: PROJECT/.flowrun)");
  unit->add_option("--log-file", log_file, "default: STATE_DIR/logs/NAME.log (rotated at 64 MiB)");
  unit->add_option("--env-file", env_file,
                   "secrets as NAME=value lines (default /etc/flowrun/NAME.env, or ~/.config/flowrun/NAME.env "
                   "with --user-unit)");
  unit->add_option("--user", user, "the account it runs as (User=)");
  unit->add_flag("--user-unit", user_unit, "a unit for `systemctl --user` (WantedBy=default.target)");
  if (auto rc = parse_args(app, argc, argv)) return *rc;

  StepRegistry registry;
  LoadResult loaded = load(file, registry);
  if (!loaded.diagnostics.empty()) return kExitUsage;
  const Workflow& workflow = *loaded.workflow;
  // A unit whose --set the workflow refuses would fail on every restart: refuse it now.
  if (!inputs_from_sets(loaded, sets)) return kExitUsage;
  if (!every.empty()) {
    auto d = parse_duration(every);
    if (!d || *d <= Duration::zero()) {
      std::cerr << "flowrun: --every expects a period such as 30s or 5m, got '" << every << "'\n";
      return kExitUsage;
    }
  } else if (!workflow.schedule_every) {
    std::cerr << "flowrun: " << file << " has no `schedule: {every: ...}`; a service would run it again and again\n"
              << "  add a schedule to the file, or pass --every 5m\n";
    return kExitUsage;
  }
  namespace fs = std::filesystem;
  ServiceUnitOptions o;
  std::error_code ec;
  o.flowrun_binary = fs::read_symlink("/proc/self/exe", ec).string();
  o.workflow_file = fs::absolute(file).lexically_normal().string();
  o.workflow_name = workflow.name;
  o.working_directory = fs::absolute(workflow.project_root).lexically_normal().string();
  o.state_dir = state_dir.empty() ? (fs::path(o.working_directory) / ".flowrun").string()
                                  : fs::absolute(state_dir).lexically_normal().string();
  o.log_file = log_file.empty() ? (fs::path(o.state_dir) / "logs" / (lock_name(workflow.name) + ".log")).string()
                                : fs::absolute(log_file).lexically_normal().string();
  const char* home = std::getenv("HOME");
  o.environment_file = !env_file.empty() ? fs::absolute(env_file).string()
                       : user_unit       ? std::string(home ? home : "~") + "/.config/flowrun/" + lock_name(workflow.name) + ".env"
                                         : "/etc/flowrun/" + lock_name(workflow.name) + ".env";
  o.every = every;
  o.sets = sets;
  o.user = user;
  o.user_unit = user_unit;
  std::cout << service_unit_text(o);
  return kExitOk;
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
    if (first == "resume") return cmd_continue(argc - 1, argv + 1, Mode::kResume);
    if (first == "cancel") return cmd_continue(argc - 1, argv + 1, Mode::kCancel);
    if (first == "runs") return cmd_runs(argc - 1, argv + 1);
    if (first == "show") return cmd_show(argc - 1, argv + 1);
    if (first == "service") return cmd_service(argc - 1, argv + 1);
    return cmd_run(argc, argv);
  } catch (const SecretTooShort& e) {
    std::cerr << "flowrun: " << e.what() << "\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    print_error(e.what());
    return kExitFailed;
  }
}
