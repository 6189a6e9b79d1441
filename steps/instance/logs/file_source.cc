#include "steps/instance/logs/file_source.h"

#include "engine/step_api/step_context.h"

namespace flowrun {

std::string FileLogSource::read(StepContext& ctx, const LineSink& take, const LinePrefilter& may_matter) {
  auto r = follower_.follow(
      path_, take, [&] { return !ctx.cancel().cancelled(); }, may_matter);
  if (r.restarted) ctx.log().warn("the log file was rotated or truncated; reading it again from its start");
  return "";
}

}  // namespace flowrun
