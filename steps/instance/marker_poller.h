#pragma once
// wait-for-marker's poller: each poll reads what is new in the log source, scans it line by line
// (printing, copying to log_file), and ends on the marker, a fail_on line or a lost instance
// that cannot be recovered.
#include <memory>

#include "engine/step_api/poll_loop.h"

namespace flowrun {

class StepContext;

// Reads the step's parameters; throws StepError::permanent for a bad one, RegexError for a bad regex.
std::unique_ptr<Poller> make_marker_poller(StepContext& ctx);

}  // namespace flowrun
