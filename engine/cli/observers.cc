#include "engine/cli/commands.h"
#include "engine/cli/metrics_observer.h"
#include "engine/cli/notify_observer.h"
#include "engine/cli/run_observer.h"
#include "engine/cli/serve_observer.h"
#include "engine/cli/terminal_view.h"

namespace flowrun {

std::unique_ptr<RunObservers> make_run_observers(const ExecOptions& o, Journal& journal) {
  auto observers = std::make_unique<RunObservers>();
  observers->add(make_notify_observer(journal, o.serve));
  if (!add_metrics_observer(*observers, o, journal)) return nullptr;
  if (!o.serve.empty()) {
    auto serve = make_serve_observer(o, journal);
    if (!serve) return nullptr;
    observers->add(std::move(serve));
  }
  if (auto view = make_terminal_view(o)) observers->add(std::move(view));
  return observers;
}

}  // namespace flowrun
