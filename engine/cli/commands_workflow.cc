// Commands that look at workflow files and step types: validate, steps, graph, service unit.
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>

#include "engine/cli/cli_common.h"
#include "engine/cli/cli_output.h"
#include "engine/cli/commands.h"
#include "engine/cli/service_unit.h"
#include "engine/journal/monitor_lock.h"

namespace flowrun {

void add_files_options(CLI::App& app, FilesOptions& o) {
  app.add_option("files", o.files, "workflow files")->required();
}

int cmd_validate(FilesOptions& o) {
  bool all_ok = true;
  // The files of one project share its step types: its scripts/steps/*.lua are loaded once, not
  // once a file (each script is a Lua state and a run of its module).
  std::map<std::filesystem::path, StepRegistry> registries;
  for (const auto& file : o.files) {
    const std::filesystem::path root = find_project_root(file);
    auto [it, fresh] = registries.try_emplace(root);
    if (fresh) build_registry(it->second, root);
    LoadResult result = load_with(file, it->second);
    if (result.diagnostics.empty()) {
      std::cout << file << ": ok (" << result.workflow->steps.size() << " steps)\n";
    } else {
      std::cerr << file << ": " << result.diagnostics.size() << " error(s)\n";
      all_ok = false;
    }
  }
  return all_ok ? kExitOk : kExitUsage;
}

void add_steps_options(CLI::App& app, StepsOptions& o) {
  app.add_flag("--json", o.json, "machine-readable output");
  app.add_option("--project", o.root, "project root whose scripts/steps/*.lua are included (default: .)");
}

int cmd_steps(StepsOptions& o) {
  StepRegistry registry;
  build_registry(registry, o.root);
  if (o.json)
    std::cout << step_catalogue_json(registry).dump(2) << "\n";
  else
    std::cout << step_catalogue(registry);
  return kExitOk;
}

void add_file_options(CLI::App& app, FileOptions& o) { app.add_option("file", o.file, "workflow file")->required(); }

int cmd_graph(FileOptions& o) {
  StepRegistry registry;
  LoadResult result = load(o.file, registry);
  if (!result.diagnostics.empty()) return kExitUsage;
  std::cout << workflow_graph(*result.workflow);
  return kExitOk;
}

void add_service_options(CLI::App& app, ServiceOptions& o) {
  app.require_subcommand(1);
  CLI::App* unit = app.add_subcommand("unit", "print the unit for FILE on stdout");
  unit->add_option("file", o.file, "workflow file")->required();
  unit->add_option("--every", o.every, "the period, when the workflow has no `schedule`");
  unit->add_option("--set", o.sets, "inputs passed on to every tick: --set name=value")->take_all();
  unit->add_option("--state-dir", o.state_dir, "the journal and locks (default: PROJECT/.flowrun)");
  unit->add_option("--log-file", o.log_file, "default: STATE_DIR/logs/NAME.log (rotated at 64 MiB)");
  unit->add_option("--env-file", o.env_file,
                   "secrets as NAME=value lines (default /etc/flowrun/NAME.env, or ~/.config/flowrun/NAME.env "
                   "with --user-unit)");
  unit->add_option("--user", o.user, "the account it runs as (User=)");
  unit->add_flag("--user-unit", o.user_unit, "a unit for `systemctl --user` (WantedBy=default.target)");
}

int cmd_service(ServiceOptions& options) {
  StepRegistry registry;
  LoadResult loaded = load(options.file, registry);
  if (!loaded.diagnostics.empty()) return kExitUsage;
  const Workflow& workflow = *loaded.workflow;
  // A unit whose --set the workflow refuses would fail on every restart: refuse it now.
  if (!inputs_from_sets(loaded, options.sets)) return kExitUsage;
  if (!options.every.empty()) {
    auto d = parse_duration(options.every);
    if (!d || *d <= Duration::zero()) {
      std::cerr << "flowrun: --every expects a period such as 30s or 5m, got '" << options.every << "'\n";
      return kExitUsage;
    }
  } else if (!workflow.schedule_every) {
    std::cerr << "flowrun: " << options.file
              << " has no `schedule: {every: ...}`; a service would run it again and again\n"
              << "  add a schedule to the file, or pass --every 5m\n";
    return kExitUsage;
  }
  namespace fs = std::filesystem;
  ServiceUnitOptions o;
  std::error_code ec;
  o.flowrun_binary = fs::read_symlink("/proc/self/exe", ec).string();
  o.workflow_file = fs::absolute(options.file).lexically_normal().string();
  o.workflow_name = workflow.name;
  o.working_directory = fs::absolute(workflow.project_root).lexically_normal().string();
  o.state_dir = options.state_dir.empty() ? (fs::path(o.working_directory) / ".flowrun").string()
                                          : fs::absolute(options.state_dir).lexically_normal().string();
  o.log_file = options.log_file.empty()
                   ? (fs::path(o.state_dir) / "logs" / (lock_name(workflow.name) + ".log")).string()
                   : fs::absolute(options.log_file).lexically_normal().string();
  const char* home = std::getenv("HOME");
  o.environment_file = !options.env_file.empty() ? fs::absolute(options.env_file).string()
                       : options.user_unit
                           ? std::string(home ? home : "~") + "/.config/flowrun/" + lock_name(workflow.name) + ".env"
                           : "/etc/flowrun/" + lock_name(workflow.name) + ".env";
  o.every = options.every;
  o.sets = options.sets;
  o.user = options.user;
  o.user_unit = options.user_unit;
  std::cout << service_unit_text(o);
  return kExitOk;
}

}  // namespace flowrun
