#include "engine/cli/command_table.h"

#include <CLI/CLI.hpp>
#include <cctype>
#include <iostream>
#include <sstream>

#include "engine/cli/cli_common.h"
#include "engine/cli/commands.h"

namespace flowrun {
namespace {

const char* const kDefaultCommand = "run";

// A row whose main parses `Options` with `add_options` and hands them to `handler`.
template <class Options>
Command row(std::string name, std::string usage, std::string summary, void (*add_options)(CLI::App&, Options&),
            int (*handler)(Options&)) {
  // `flowrun FILE` and `flowrun run FILE` are the same command, called flowrun in its help.
  const std::string program = name == kDefaultCommand ? "flowrun" : "flowrun " + name;
  auto main = [program, summary, add_options, handler](int argc, char** argv) {
    CLI::App app{summary, program};
    Options options;
    add_options(app, options);
    if (auto rc = parse_args(app, argc, argv)) return *rc;
    return handler(options);
  };
  return Command{std::move(name), std::move(usage), std::move(summary), std::move(main)};
}

// One overview line: "  flowrun USAGE", the summary from column 31 (on the next line when the
// usage is longer), wrapped at 100 columns.
void overview_line(std::ostringstream& out, const std::string& usage, std::string summary) {
  constexpr size_t kColumn = 31, kWidth = 100;
  std::string line = "  flowrun " + usage;
  if (summary.empty()) {
    out << line << "\n";
    return;
  }
  summary[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(summary[0])));
  if (line.size() + 1 > kColumn) {
    out << line << "\n";
    line.clear();
  }
  line.resize(kColumn, ' ');
  std::istringstream words(summary);
  std::string word;
  size_t start = line.size();
  while (words >> word) {
    if (line.size() > start && line.size() + 1 + word.size() > kWidth) {
      out << line << "\n";
      line = std::string(kColumn, ' ');
      start = line.size();
    }
    line += (line.size() > start ? " " : "") + word;
  }
  out << line << "\n";
}

}  // namespace

const std::vector<Command>& command_table() {
  static const std::vector<Command> table = {
      row<RunOptions>(kDefaultCommand,
                      "FILE [--set k=v]... [--every 5m | --once] [--dry-run] [--env-file F] [--log-file F] "
                      "[--log-format text|json] [-v|-q]",
                      "Run a workflow, once or on a schedule (--every, --once, `schedule:`)", add_run_options, cmd_run),
      row<FilesOptions>("validate", "validate FILE...",
                        "Check workflow files without running them; every error names FILE:LINE:COL", add_files_options,
                        cmd_validate),
      row<StepsOptions>("steps", "steps [--json]", "List every step type with its parameters", add_steps_options,
                        cmd_steps),
      row<FileOptions>("graph", "graph FILE", "Print a workflow's step tree as a Mermaid flowchart", add_file_options,
                       cmd_graph),
      row<RunsOptions>("runs", "runs", "List recent runs from the journal", add_runs_options, cmd_runs),
      row<ShowOptions>("show", "show RUN", "Show one run: its steps with status, attempts, outputs and durations",
                       add_show_options, cmd_show),
      row<ServeOptions>("serve", "serve [--listen 127.0.0.1:8080] [--token T]",
                        "Serve the live view of the journal's runs in the browser (read-only but for cancel)",
                        add_serve_options, cmd_serve),
      row<RecordedRunOptions>("resume", "resume RUN",
                              "Carry on with a detached, killed or failed run: finished steps are not run again",
                              add_recorded_run_options, cmd_resume),
      row<RecordedRunOptions>("cancel", "cancel RUN",
                              "Cancel a run: run the finally steps it still owes, then mark it cancelled",
                              add_recorded_run_options, cmd_cancel),
      row<NotifyOptions>("notify", "notify [list|deliver]",
                         "List the notifications in the outbox (no targets), or deliver the pending ones now",
                         add_notify_options, cmd_notify),
      row<ServiceOptions>("service", "service unit FILE",
                          "Print a systemd unit that runs a scheduled workflow as a service (install steps: "
                          "docs/service.md)",
                          add_service_options, cmd_service),
  };
  return table;
}

std::string overview() {
  std::ostringstream out;
  out << "flowrun - declarative workflows with retries, timeouts, polling and cleanup\n\nusage:\n";
  for (const auto& command : command_table()) overview_line(out, command.usage, command.summary);
  overview_line(out, "COMMAND --help", "help on one command");
  overview_line(out, "--version", "");
  out << R"(
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
  return out.str();
}

int run_command_line(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << overview();
    return kExitUsage;
  }
  const std::string first = argv[1];
  if (first == "-h" || first == "--help" || first == "help") {
    std::cout << overview();
    return kExitOk;
  }
  if (first == "--version" || first == "-V") {
    std::cout << "flowrun " FLOWRUN_VERSION "\n";
    return kExitOk;
  }
  try {
    const auto& table = command_table();
    for (const auto& command : table)
      if (command.name == first) return command.main(argc - 1, argv + 1);
    return table.front().main(argc, argv);  // `flowrun FILE ...`
  } catch (const std::exception& e) {
    print_error(e.what());
    return kExitFailed;
  }
}

}  // namespace flowrun
