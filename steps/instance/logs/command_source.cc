#include "steps/instance/logs/command_source.h"

#include <algorithm>

#include "engine/io/process_runner.h"
#include "engine/io/step_error.h"
#include "engine/step_api/step_context.h"

namespace flowrun {

CommandLogSource::CommandLogSource(std::vector<std::string> argv, std::string cwd, int tail)
    : argv_(std::move(argv)), cwd_(std::move(cwd)), tail_(tail), follower_(LogFollower::memory_for_tail(tail)) {}

std::string CommandLogSource::read(StepContext& ctx, const LineSink& take, const LinePrefilter&) {
  ProcessSpec spec;
  spec.argv = argv_;
  spec.cwd = cwd_;
  spec.timeout = ctx.bounded(std::chrono::seconds(60));
  ProcessResult r = ctx.services().processes.run(spec, ctx.cancel());
  if (r.exit_code != 0)
    throw StepError::transient("the log command exited with " + std::to_string(r.exit_code) + ": " +
                               r.err.substr(0, 200));
  read_snapshot(follower_, r.out, false, tail_, ctx.log(), take);
  return "";
}

}  // namespace flowrun
