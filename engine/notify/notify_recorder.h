#pragma once
#include <functional>
#include <memory>
#include <string>

#include "engine/notify/notifier.h"
#include "engine/step_api/execution_recorder.h"

namespace flowrun {

// Enqueues the events `notify.on` routes (the run-level ones excepted: those come from the run's
// end) and passes every event on. A notification problem is reported to `warn` and never reaches
// the step that emitted the event.
class NotifyRecorder final : public ForwardingRecorder {
 public:
  NotifyRecorder(std::unique_ptr<ExecutionRecorder> inner, std::shared_ptr<Notifier> notifier,
                 std::function<void(const std::string&)> warn);
  void event(const std::string& path, const std::string& kind, const std::string& message, const Json& data) override;

 private:
  std::shared_ptr<Notifier> notifier_;
  std::function<void(const std::string&)> warn_;
};

}  // namespace flowrun
