#pragma once
// The commands of the CLI: for each, its options, how they are added to the parser, and its
// handler. engine/cli/command_table.cc puts each in one row; a new command is a struct and two
// functions here (in a commands_*.cc by family) plus that row.
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace flowrun {

// commands_run.cc: executing a run.

// Options shared by the commands that execute a run.
struct ExecOptions {
  std::string log_file;
  std::string log_format = "text";
  bool verbose = false;
  bool quiet = false;
  std::string on_interrupt = "detach";
  std::string state_dir;
  std::string env_file;
  std::string metrics;  // --metrics HOST:PORT (engine/cli/metrics_observer.h)
  bool metrics_public = false;
  std::string serve;        // --serve HOST:PORT: the live view of this process's runs
  std::string serve_token;  // --token: required by that view (and when HOST is not loopback)
  bool no_live = false;     // no live table on a terminal (terminal_view.h)
};

struct RunOptions {
  std::string file, every_text;
  std::vector<std::string> sets;
  bool dry_run = false, once = false;
  int keep_runs = 1000;
  ExecOptions exec;
};
void add_run_options(CLI::App& app, RunOptions& o);
int cmd_run(RunOptions& o);

// resume and cancel: a recorded run, reloaded.
struct RecordedRunOptions {
  std::string run_id;
  ExecOptions exec;
};
void add_recorded_run_options(CLI::App& app, RecordedRunOptions& o);
int cmd_resume(RecordedRunOptions& o);
int cmd_cancel(RecordedRunOptions& o);

// commands_workflow.cc: looking at workflow files and step types.

struct FilesOptions {
  std::vector<std::string> files;
};
void add_files_options(CLI::App& app, FilesOptions& o);
int cmd_validate(FilesOptions& o);

struct StepsOptions {
  bool json = false;
  std::string root = ".";
};
void add_steps_options(CLI::App& app, StepsOptions& o);
int cmd_steps(StepsOptions& o);

struct FileOptions {
  std::string file;
};
void add_file_options(CLI::App& app, FileOptions& o);
int cmd_graph(FileOptions& o);

struct ServiceOptions {
  std::string file, every, state_dir, log_file, env_file, user;
  std::vector<std::string> sets;
  bool user_unit = false;
};
void add_service_options(CLI::App& app, ServiceOptions& o);
int cmd_service(ServiceOptions& o);

// commands_runs.cc: reading the journal.

struct RunsOptions {
  int limit = 20;
  bool json = false;
  std::string state_dir;
};
void add_runs_options(CLI::App& app, RunsOptions& o);
int cmd_runs(RunsOptions& o);

struct ShowOptions {
  std::string run_id, state_dir;
  bool json = false;
};
void add_show_options(CLI::App& app, ShowOptions& o);
int cmd_show(ShowOptions& o);

// commands_serve.cc: the live view in the browser.

struct ServeOptions {
  std::string listen = "127.0.0.1:8080";
  std::string token;
  std::string state_dir;
};
void add_serve_options(CLI::App& app, ServeOptions& o);
int cmd_serve(ServeOptions& o);

// commands_notify.cc: the notification outbox.

struct NotifyOptions {
  std::string action = "list";  // list or deliver
  int limit = 50;
  bool json = false;
  std::string state_dir;
};
void add_notify_options(CLI::App& app, NotifyOptions& o);
int cmd_notify(NotifyOptions& o);

}  // namespace flowrun
