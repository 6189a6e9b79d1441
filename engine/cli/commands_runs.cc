// Commands that read the journal: runs, show.
#include <CLI/CLI.hpp>
#include <iostream>

#include "engine/cli/cli_common.h"
#include "engine/cli/commands.h"
#include "engine/io/utf8.h"
#include "engine/journal/journal.h"
#include "engine/journal/journal_view.h"
#include "engine/journal/run_view.h"

namespace flowrun {

void add_runs_options(CLI::App& app, RunsOptions& o) {
  app.add_option("-n,--limit", o.limit, "how many (default 20)");
  app.add_flag("--json", o.json, "machine-readable output");
  add_state_dir(app, o.state_dir);
}

int cmd_runs(RunsOptions& o) {
  auto journal = open_journal(o.state_dir);
  if (!journal) return kExitUsage;
  auto runs = journal->recent_runs(o.limit);
  if (o.json) {
    Json out = Json::array();
    for (const auto& r : runs)
      out.push_back({{"id", r.id},
                     {"workflow", r.workflow_name},
                     {"path", r.workflow_path},
                     {"status", r.status},
                     {"started_ms", r.started_ms},
                     {"owner_pid", r.owner_pid},
                     {"error", r.error}});
    std::cout << dump_json(out, 2) << "\n";
  } else {
    std::cout << runs_table(runs);
  }
  return kExitOk;
}

void add_show_options(CLI::App& app, ShowOptions& o) {
  app.add_option("run", o.run_id, "run id")->required();
  app.add_flag("--json", o.json, "machine-readable output");
  add_state_dir(app, o.state_dir);
}

int cmd_show(ShowOptions& o) {
  auto journal = open_journal(o.state_dir);
  if (!journal) return kExitUsage;
  auto run = journal->run(o.run_id);
  if (!run) {
    std::cerr << "flowrun: no run " << o.run_id << " in " << journal->path() << "\n";
    return kExitUsage;
  }
  auto steps = journal->steps(o.run_id);
  if (o.json) {
    std::cout << dump_json(Json{{"id", run->id},
                                {"status", run->status},
                                {"workflow", run->workflow_name},
                                {"steps", steps},
                                {"events", journal->events(o.run_id)}},
                           2)
              << "\n";
  } else {
    std::cout << run_details(*run, steps) << items_table(run_view(*journal, o.run_id, wall_clock_ms()));
  }
  return kExitOk;
}

}  // namespace flowrun
