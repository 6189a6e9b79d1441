#pragma once
// What wait-for-marker does when the instance it follows stopped, exited or vanished before the
// marker: continue with a live instance that carries its label (an earlier attempt replaced
// it), else re-provision from the instance's spec, at most `max_recoveries` times, else fail.
#include <optional>
#include <string>

namespace flowrun {

class InstanceLogSource;
class StepContext;

class InstanceRecovery {
 public:
  explicit InstanceRecovery(int max_recoveries) : max_recoveries_(max_recoveries) {}

  // `why`: how the instance ended ("instance 7 went exited (code 1)"); `last_line`: the last
  // log line read, for the message. Switches `source` to the instance to continue with and
  // returns nullopt, or returns the failure's message. Throws StepError from the provider.
  std::optional<std::string> recover(InstanceLogSource& source, const std::string& why, const std::string& last_line,
                                     StepContext& ctx);

  int recoveries() const { return recoveries_; }

 private:
  int max_recoveries_;
  int recoveries_ = 0;
};

}  // namespace flowrun
