// Commands that execute a run: run (once, or a monitor on a schedule), resume and cancel. Wires
// the real clock, HTTP client and process runner, and maps the run's state to an exit code
// (engine/io/run_state.h).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <set>
#include <sstream>

#include "engine/cli/cli_common.h"
#include "engine/cli/cli_output.h"
#include "engine/cli/commands.h"
#include "engine/cli/notify_observer.h"
#include "engine/cli/orphan_processes.h"
#include "engine/cli/run_observer.h"
#include "engine/cli/scheduler.h"
#include "engine/io/http_client.h"
#include "engine/io/logging.h"
#include "engine/io/process_runner.h"
#include "engine/io/signal_watcher.h"
#include "engine/io/utf8.h"
#include "engine/journal/cancel_requests.h"
#include "engine/journal/failsafe_recorder.h"
#include "engine/journal/journal.h"
#include "engine/journal/monitor_lock.h"
#include "engine/runtime/executor.h"

namespace flowrun {
namespace {

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
                     std::all_of(name.begin(), name.end(),
                                 [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }) &&
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
  app.add_option("--serve", o.serve, "serve the live view of this process's runs at HOST:PORT (e.g. 127.0.0.1:8080)");
  app.add_option("--token", o.serve_token, "the token the --serve view requires (needed when HOST is not loopback)")
      ->envname("FLOWRUN_SERVE_TOKEN");
  app.add_flag("--no-live", o.no_live, "plain log lines, no live table of for_each items, even on a terminal");
  add_state_dir(app, o.state_dir);
  app.add_option("--metrics", o.metrics,
                 "serve Prometheus metrics of this process's runs at http://HOST:PORT/metrics (e.g. 127.0.0.1:9464)");
  app.add_flag("--metrics-public", o.metrics_public, "allow --metrics on an address other than loopback");
}

enum class Mode { kRun, kResume, kCancel, kDryRun };

// The end of a run on stdout: the summary (none with -q when the run succeeded), or one JSON
// object with --log-format json.
void print_summary(const RunResult& result, RunState state, const std::string& run_id, const ExecOptions& o,
                   const Redactor& redactor) {
  if (o.log_format == "json") {
    std::cout << redactor.redact_json_text(run_summary_json(result, state, run_id)) << "\n" << std::flush;
    return;
  }
  if (o.quiet && state == RunState::kSucceeded) return;
  std::cout << redactor.redact(run_summary(result, state, run_id, o.verbose)) << std::flush;
}

// How to carry on with a detached run, on stderr.
void print_detached(const std::string& run_id, const Journal& journal, const ExecOptions& o) {
  if (o.log_format == "json") {
    std::cerr << Json{{"event", to_string(RunState::kDetached)},
                      {"run", run_id},
                      {"journal", journal.path()},
                      {"resume", "flowrun resume " + run_id},
                      {"cancel", "flowrun cancel " + run_id}}
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
// `observers` (none in a dry run) watch the run beside the journal.
int execute(const Workflow& workflow, const Json& inputs, const StepRegistry& registry, Journal* journal,
            const std::string& run_id, Mode mode, const ExecOptions& o, RunObservers* observers,
            Monitor* monitor = nullptr) {
  const std::optional<Redactor> secrets = secrets_redactor(
      workflow, inputs, journal ? stored_notify_secrets(journal->path(), run_id) : std::vector<std::string>{});
  if (!secrets) return kExitUsage;
  const Redactor& redactor = *secrets;
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
  auto run_context = [&] { return RunContext{run_id, workflow, inputs, *journal, redactor, *logs}; };
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
    if (observers) recorder = observers->run_started(run_context(), std::move(recorder));
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
  Services services{http, processes, clock, redactor, workflow.project_root, o.state_dir};
  services.recorder = recorder.get();
  ExecutorOptions options;
  options.run_id = run_id;
  options.dry_run = mode == Mode::kDryRun;
  options.print = [json = o.log_format == "json"](const std::string& line) {
    if (json)
      std::cout << dump_json(Json{{"event", "dry_run"}, {"text", line}}) << "\n";
    else
      std::cout << line << "\n";
    std::cout << std::flush;
  };
  options.recorder = recorder.get();
  // A monitor's tick is not resumed later (the next tick does its work), so a signal cancels it
  // and runs its finally steps instead of detaching.
  options.detach_on_cancel = !monitor && o.on_interrupt == "detach" && mode != Mode::kCancel;
  options.finally_only = mode == Mode::kCancel;

  // A cancel asked for from the live view (another process) cancels this run and cleans up.
  std::atomic<bool> cleanup_requested{false};
  options.cleanup_on_cancel = &cleanup_requested;
  std::optional<CancelRequestWatcher> cancel_requests;
  if (journal && mode != Mode::kCancel) cancel_requests.emplace(journal->path(), run_id, cancel, cleanup_requested);

  Executor executor(workflow, registry, services, random, *logs, options);
  RunResult result = executor.run(inputs, cancel, finally_cancel);
  cancel_requests.reset();
  logs->flush();

  RunState state = result.status;
  if (mode == Mode::kCancel && state != RunState::kFailed) state = RunState::kCancelled;
  if (journal && observers) observers->run_ending(run_context(), state, result);
  if (journal &&
      !record_run_end(*journal, run_id, to_string(state), redactor.redact(result.error), failsafe_recorder)) {
    if (mode != Mode::kDryRun) print_summary(result, state, run_id, o, redactor);
    recorder.reset();
    if (observers) observers->run_ended(run_context(), state);
    return kExitFailed;
  }
  if (mode != Mode::kDryRun) print_summary(result, state, run_id, o, redactor);
  if (state == RunState::kDetached && journal) print_detached(run_id, *journal, o);
  recorder.reset();
  if (journal && observers) observers->run_ended(run_context(), state);
  if (mode == Mode::kCancel) return state == RunState::kFailed ? kExitFailed : kExitOk;
  return exit_code_for(state);
}

// Records a new run of `workflow` in the journal and executes it.
int start_run(const LoadResult& loaded, const std::string& file, const Json& inputs, const StepRegistry& registry,
              Journal& journal, const ExecOptions& o, RunObservers& observers, Monitor* monitor = nullptr) {
  const Workflow& workflow = *loaded.workflow;
  RunRow row;
  row.id = new_run_id();
  row.workflow_path = std::filesystem::absolute(file).string();
  row.workflow_name = workflow.name;
  row.content_hash = content_hash(loaded.source);
  // A secret passed through --set must not reach the journal either.
  const std::optional<Redactor> secrets = secrets_redactor(workflow, inputs);
  if (!secrets) return kExitUsage;
  row.inputs = secrets->redact_json(inputs);
  row.status = to_string(RunState::kRunning);
  row.started_ms = wall_clock_ms();
  try {
    journal.create_run(row);
  } catch (const std::exception& e) {
    // Disk full or a read-only journal before anything ran: say where, and that nothing started.
    const std::string dir = std::filesystem::path(journal.path()).parent_path().string();
    print_error("cannot write the journal " + journal.path() + ": " + e.what() +
                "; nothing of the run started. Free space on " + dir +
                " (or point --state-dir elsewhere) and run it again");
    return kExitFailed;
  }
  return execute(workflow, inputs, registry, &journal, row.id, Mode::kRun, o, &observers, monitor);
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
                Journal& journal, const ExecOptions& o, RunObservers& observers, Duration every, int keep_runs) {
  const Workflow& workflow = *loaded.workflow;
  const std::optional<Redactor> secrets = secrets_redactor(workflow, inputs);
  if (!secrets) return kExitUsage;
  auto logs = open_logs(o, *secrets);
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
        const int rc = start_run(loaded, file, inputs, registry, journal, o, observers, &monitor);
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
int continue_run(const RecordedRunOptions& options, Mode mode) {
  const bool resume = mode == Mode::kResume;
  const std::string& run_id = options.run_id;
  const ExecOptions& o = options.exec;
  set_json_output(o.log_format == "json");

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
    std::cerr << "flowrun: warning: " << run->workflow_path
              << " changed since the run started; its step ids still match\n";
  }
  auto observers = make_run_observers(o, *journal);
  if (!observers) return kExitUsage;
  return execute(workflow, run->inputs, registry, journal.get(), run_id, mode, o, observers.get());
}

}  // namespace

void add_run_options(CLI::App& app, RunOptions& o) {
  app.add_option("file", o.file, "workflow file")->required();
  app.add_option("--set", o.sets, "override an input: --set name=value (repeatable)")->take_all();
  app.add_flag("--dry-run", o.dry_run, "print each step with its resolved parameters; run nothing with side effects");
  app.add_option("--every", o.every_text, "run a tick every period (5m, 30s...) until stopped; overrides `schedule`");
  app.add_flag("--once", o.once, "run one tick of a scheduled workflow and exit with its result");
  app.add_option("--keep-runs", o.keep_runs, "finished ticks kept in the journal (default 1000)")
      ->check(CLI::PositiveNumber);
  add_exec_options(app, o.exec);
}

int cmd_run(RunOptions& options) {
  const ExecOptions& o = options.exec;
  const std::string& file = options.file;
  const std::string& every_text = options.every_text;
  const auto& sets = options.sets;
  const bool dry_run = options.dry_run, once = options.once;
  const int keep_runs = options.keep_runs;
  set_json_output(o.log_format == "json");
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
  if (dry_run) return execute(workflow, *inputs, registry, nullptr, new_run_id(), Mode::kDryRun, o, nullptr);
  if (!every && !once) every = workflow.schedule_every;

  auto journal = open_journal(o.state_dir);
  if (!journal) return kExitUsage;
  // A monitor (scheduled, or one tick of it) runs alone: the lock is the kernel's, so it goes
  // with the process however the process ends.
  MonitorLock::Attempt lock;
  if (every || once) {
    try {
      lock = MonitorLock::try_acquire(o.state_dir, workflow.name);
    } catch (const std::exception& e) {
      print_error(e.what());
      return kExitUsage;
    }
    if (!lock.lock) {
      std::cerr << "flowrun: another monitor of " << workflow.name << " is running (" << lock.holder
                << "); not starting a second\n"
                << "  its lock: "
                << (std::filesystem::path(o.state_dir) / "locks" / (lock_name(workflow.name) + ".lock")).string()
                << "\n";
      return kExitUsage;
    }
  }
  auto observers = make_run_observers(o, *journal);
  if (!observers) return kExitUsage;
  if (every) return run_monitor(loaded, file, *inputs, registry, *journal, o, *observers, *every, keep_runs);
  return start_run(loaded, file, *inputs, registry, *journal, o, *observers);
}

void add_recorded_run_options(CLI::App& app, RecordedRunOptions& o) {
  app.add_option("run", o.run_id, "run id (see flowrun runs)")->required();
  add_exec_options(app, o.exec);
}

int cmd_resume(RecordedRunOptions& o) { return continue_run(o, Mode::kResume); }

int cmd_cancel(RecordedRunOptions& o) { return continue_run(o, Mode::kCancel); }

}  // namespace flowrun
