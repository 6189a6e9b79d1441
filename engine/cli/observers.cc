#include "engine/cli/commands.h"
#include "engine/cli/run_observer.h"

namespace flowrun {

std::unique_ptr<RunObservers> make_run_observers(const ExecOptions& o, Journal& journal) {
  (void)o, (void)journal;
  auto observers = std::make_unique<RunObservers>();
  return observers;
}

}  // namespace flowrun
