#pragma once
#include <memory>

#include "engine/cli/run_observer.h"

namespace flowrun {

// --serve HOST:PORT on a run or a monitor: the live view served in-process for the process's
// life (every tick of a monitor), its URL printed once at start. Null (the reason printed) when
// the settings are refused or the address cannot be listened on; none asked for: an observer
// that does nothing is not made either, so check o.serve first.
std::unique_ptr<RunObserver> make_serve_observer(const ExecOptions& o, Journal& journal);

}  // namespace flowrun
