#include "engine/cli/commands.h"
#include "engine/cli/notify_observer.h"
#include "engine/cli/run_observer.h"

namespace flowrun {

std::unique_ptr<RunObservers> make_run_observers(const ExecOptions& o, Journal& journal) {
  (void)o;
  auto observers = std::make_unique<RunObservers>();
  observers->add(make_notify_observer(journal));
  return observers;
}

}  // namespace flowrun
