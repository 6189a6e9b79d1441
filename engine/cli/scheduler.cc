#include "engine/cli/scheduler.h"

#include <stdexcept>

namespace flowrun {

int run_on_schedule(Duration every, Clock& clock, const CancelToken& stop, const std::function<void(int)>& tick,
                    const std::function<void(Duration)>& on_wait) {
  if (every <= Duration::zero()) throw std::invalid_argument("the schedule's period must be positive");
  int ticks = 0;
  TimePoint next = clock.now();
  while (!stop.cancelled()) {
    const TimePoint started = clock.now();
    tick(++ticks);
    if (stop.cancelled()) break;
    next = started + every;
    const TimePoint now = clock.now();
    if (now >= next) {  // overran: the next tick starts now, the missed ones are dropped
      next = now;
      continue;
    }
    if (on_wait) on_wait(next - now);
    if (!clock.sleep_for(next - now, stop)) break;
  }
  return ticks;
}

}  // namespace flowrun
