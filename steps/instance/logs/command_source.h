#pragma once
// A command's output as a LogSource: the command runs on every read and prints the end of a log
// (`tail -n 1000 job.log`, `kubectl logs --tail ...`); what is new is found by LogFollower.
#include <string>
#include <vector>

#include "steps/instance/logs/log_follower.h"
#include "steps/instance/logs/log_source.h"

namespace flowrun {

class CommandLogSource final : public LogSource {
 public:
  // `tail` only sizes the follower's memory and names the window in a gap's warning.
  CommandLogSource(std::vector<std::string> argv, std::string cwd, int tail);
  // Throws StepError::transient when the command exits with other than 0.
  std::string read(StepContext& ctx, const LineSink& take, const LinePrefilter& may_matter) override;
  long long lines_seen() const override { return follower_.lines_seen(); }

 private:
  std::vector<std::string> argv_;
  std::string cwd_;
  int tail_;
  LogFollower follower_;
};

}  // namespace flowrun
