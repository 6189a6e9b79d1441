#pragma once
// An instance's log as a LogSource, through its provider. A read also notices the instance's
// status: a change is logged, a loading or rebooting instance has no log yet, and an instance
// that stopped for good or vanished ends the log (instance_recovery decides what then).
#include <memory>
#include <string>

#include "engine/io/json.h"
#include "steps/instance/logs/log_follower.h"
#include "steps/instance/logs/log_source.h"
#include "steps/instance/providers/instance_provider.h"

namespace flowrun {

class InstanceLogSource final : public LogSource {
 public:
  // `instance`: an instance object (provision's outputs.instance) or an id; `tail`: lines asked
  // for per read. The provider's name is written into the instance.
  InstanceLogSource(std::unique_ptr<InstanceProvider> provider, const Json& instance, int tail);
  std::string read(StepContext& ctx, const LineSink& take, const LinePrefilter& may_matter) override;
  long long lines_seen() const override { return follower_.lines_seen(); }

  InstanceProvider& provider() { return *provider_; }
  // The instance followed, as steps hand it on, with its spec when it came with one.
  const Json& instance() const { return instance_; }
  // Follows `replacement` from now on (its log from its start), keeping the spec.
  void switch_to(const InstanceState& replacement);

 private:
  std::unique_ptr<InstanceProvider> provider_;
  Json instance_;
  int tail_;
  LogFollower follower_;
  std::string last_status_;
};

}  // namespace flowrun
