#include "engine/notify/notify_recorder.h"

namespace flowrun {

NotifyRecorder::NotifyRecorder(std::unique_ptr<ExecutionRecorder> inner, std::shared_ptr<Notifier> notifier,
                               std::function<void(const std::string&)> warn)
    : ForwardingRecorder(std::move(inner)), notifier_(std::move(notifier)), warn_(std::move(warn)) {}

void NotifyRecorder::event(const std::string& path, const std::string& kind, const std::string& message,
                           const Json& data) {
  // A step's own "failed" event is not the run's: the run's outcome is notified at its end.
  const bool run_level = kind == "succeeded" || kind == "failed" || kind == "partial" || kind == "cancelled";
  if (!run_level && notifier_->routes(kind)) {
    try {
      notifier_->notify(path, kind, message, data);
    } catch (const std::exception& e) {
      warn_(std::string("notifications: could not enqueue ") + kind + " of " + path + ": " + e.what());
    }
  }
  ForwardingRecorder::event(path, kind, message, data);
}

}  // namespace flowrun
