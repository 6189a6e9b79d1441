#include "engine/cli/serve_observer.h"

#include <filesystem>
#include <iostream>

#include "engine/cli/cli_common.h"
#include "engine/cli/commands.h"
#include "engine/journal/journal.h"
#include "engine/serve/live_view_server.h"

namespace flowrun {
namespace {

// Watches no hook: the server reads the journal the runs write, and lives with the observer.
class ServeObserver final : public RunObserver {
 public:
  explicit ServeObserver(std::unique_ptr<LiveViewServer> server) : server_(std::move(server)) {}

 private:
  std::unique_ptr<LiveViewServer> server_;
};

}  // namespace

std::unique_ptr<RunObserver> make_serve_observer(const ExecOptions& o, Journal& journal) {
  const LiveViewSettings settings{o.serve, o.serve_token};
  if (auto problem = live_view_settings_error(settings, "--serve"); !problem.empty()) {
    print_error(problem);
    return nullptr;
  }
  try {
    const std::string state_dir = std::filesystem::path(journal.path()).parent_path().string();
    auto server = std::make_unique<LiveViewServer>(journal, state_dir, settings);
    std::cerr << "live view: " << server->url() << "/" << (o.serve_token.empty() ? "" : "  (open /?token=TOKEN once)")
              << "\n";
    return std::make_unique<ServeObserver>(std::move(server));
  } catch (const std::exception& e) {
    print_error(std::string("--serve: ") + e.what());
    return nullptr;
  }
}

}  // namespace flowrun
