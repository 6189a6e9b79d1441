#include "steps/instance/logs/log_source.h"

#include "engine/io/logging.h"
#include "steps/instance/logs/log_follower.h"

namespace flowrun {

void read_snapshot(LogFollower& follower, std::string_view snapshot, bool final, int tail, const StepLog& log,
                   const LineSink& take) {
  auto update = follower.feed(snapshot, final);
  if (update.gap)
    log.warn("the log moved on by more than " + std::to_string(tail) +
             " lines between two checks (or was truncated); some lines may not have been seen");
  for (const auto& line : update.lines)
    if (!take(line)) break;
}

}  // namespace flowrun
