#include "engine/cli/commands.h"
#include "engine/cli/metrics_observer.h"
#include "engine/cli/run_observer.h"

namespace flowrun {

std::unique_ptr<RunObservers> make_run_observers(const ExecOptions& o, Journal& journal) {
  auto observers = std::make_unique<RunObservers>();
  if (!add_metrics_observer(*observers, o, journal)) return nullptr;
  return observers;
}

}  // namespace flowrun
