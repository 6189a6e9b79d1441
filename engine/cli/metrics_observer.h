#pragma once
#include "engine/cli/run_observer.h"

namespace flowrun {

struct ExecOptions;

// Counts every run of this process into the process's metrics registry (a MetricsRecorder per
// run), and with `--metrics ADDR` serves it for the process's life. False, the reason on
// stderr, when the address cannot be served.
bool add_metrics_observer(RunObservers& observers, const ExecOptions& o, Journal& journal);

}  // namespace flowrun
