#pragma once
// The live table in the terminal: while a for_each runs and stdout is a terminal, one line per
// running item (status, progress bar, elapsed, cost, last line) redrawn in place at the bottom,
// with ended items and the log scrolling above it. Plain log lines otherwise (a pipe, --no-live,
// --log-format json).
#include <memory>

#include "engine/cli/run_observer.h"

namespace flowrun {

struct ExecOptions;
class Clock;
class LiveTerminal;

// The observer for a command's options; null when the live table is off.
std::unique_ptr<RunObserver> make_terminal_view(const ExecOptions& o);

// Wraps `inner`, feeding `terminal`'s table from what the run reports (exposed for tests).
std::unique_ptr<ExecutionRecorder> live_table_recorder(std::unique_ptr<ExecutionRecorder> inner,
                                                       std::shared_ptr<LiveTerminal> terminal);

}  // namespace flowrun
