#pragma once
// The loop behind `--every` and `schedule: {every: ...}`: a tick now, then one every period.
#include <functional>

#include "engine/io/cancel_token.h"
#include "engine/io/clock.h"

namespace flowrun {

// Runs `tick(n)` (n = 1, 2, ...) at once and then every `every`, measured from each tick's start,
// until `stop` fires. A tick that outlasts the period is followed at once by the next one; the
// periods it overlapped are skipped, not made up, so a monitor that fell behind never bursts.
// Ticks never overlap. `on_wait` hears how long the loop is about to sleep. Returns the number
// of ticks run. A tick that throws ends the loop: ticks report their own failures.
int run_on_schedule(Duration every, Clock& clock, const CancelToken& stop, const std::function<void(int)>& tick,
                    const std::function<void(Duration)>& on_wait = {});

}  // namespace flowrun
