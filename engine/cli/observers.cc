#include "engine/cli/commands.h"
#include "engine/cli/run_observer.h"
#include "engine/cli/terminal_view.h"

namespace flowrun {

std::unique_ptr<RunObservers> make_run_observers(const ExecOptions& o, Journal& journal) {
  (void)o, (void)journal;
  auto observers = std::make_unique<RunObservers>();
  if (auto view = make_terminal_view(o)) observers->add(std::move(view));
  return observers;
}

}  // namespace flowrun
