#pragma once
#include <optional>

#include "engine/io/duration.h"
#include "engine/io/json.h"
#include "engine/step_api/step_type.h"

namespace flowrun {

class StepContext;

struct PollSettings {
  Duration interval{std::chrono::seconds(5)};
  int threshold = 1;                             // consecutive "done" observations needed
  std::optional<Duration> timeout;               // from the first poll; the attempt deadline also applies
  Duration heartbeat{std::chrono::seconds(60)};  // how often a long wait says it is still waiting
  // The delay after the first probe error and the most it grows to (`backoff_first`,
  // `backoff_max` when the step declares them); unset: probe_backoff()'s defaults.
  std::optional<Duration> backoff_first;
  std::optional<Duration> backoff_max;
};

// Reads interval, threshold and timeout from a poller's parameters, falling back to the type's
// defaults. Throws StepError::permanent for a bad value.
PollSettings poll_settings(const StepInfo& info, const Json& with);

// The delay after `failures` probe errors in a row: the interval doubled each time, at most
// 16 intervals and at most 10 minutes (never less than one interval).
Duration probe_backoff(Duration interval, int failures);
// The same doubling from `first`, capped at `cap`.
Duration probe_backoff(Duration first, Duration cap, int failures);

// Polls until `threshold` consecutive done results (returns their outputs), a failed result
// (StepError::permanent), the timeout (StepError::timeout) or cancellation. A probe that throws
// a transient or timeout StepError is logged and retried after probe_backoff(); other errors
// end the loop.
Json run_poll_loop(Poller& poller, StepContext& ctx, const PollSettings& settings);

}  // namespace flowrun
