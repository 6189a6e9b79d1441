// `flowrun serve`: the live view of a journal's runs, until Ctrl+C or SIGTERM.
#include <CLI/CLI.hpp>
#include <iostream>

#include "engine/cli/cli_common.h"
#include "engine/cli/commands.h"
#include "engine/io/cancel_token.h"
#include "engine/io/signal_watcher.h"
#include "engine/journal/journal.h"
#include "engine/serve/live_view_server.h"

namespace flowrun {

void add_serve_options(CLI::App& app, ServeOptions& o) {
  app.add_option("--listen", o.listen, "HOST:PORT to listen on (default 127.0.0.1:8080; other hosts need --token)");
  app.add_option("--token", o.token, "require this token (a header or a cookie set by visiting /?token=T)")
      ->envname("FLOWRUN_SERVE_TOKEN");
  add_state_dir(app, o.state_dir);
}

int cmd_serve(ServeOptions& o) {
  const LiveViewSettings settings{o.listen, o.token};
  if (auto problem = live_view_settings_error(settings, "--listen"); !problem.empty()) {
    print_error(problem);
    return kExitUsage;
  }
  CancelToken stop;
  SignalWatcher signals(stop);  // before any other thread starts
  auto journal = open_journal(o.state_dir);
  if (!journal) return kExitUsage;
  std::unique_ptr<LiveViewServer> server;
  try {
    server = std::make_unique<LiveViewServer>(*journal, o.state_dir, settings);
  } catch (const std::exception& e) {
    print_error(e.what());
    return kExitUsage;
  }
  std::cout << "flowrun serve: " << server->url() << "/" << (o.token.empty() ? "" : "  (open /?token=TOKEN once)")
            << "  journal " << journal->path() << "; Ctrl+C stops\n"
            << std::flush;
  while (!stop.wait_for(std::chrono::hours(1))) {
  }
  return kExitOk;
}

}  // namespace flowrun
