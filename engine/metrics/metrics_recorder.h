#pragma once
#include <map>
#include <memory>
#include <string>

#include "engine/io/clock.h"
#include "engine/io/mutex.h"
#include "engine/metrics/step_type_of.h"
#include "engine/step_api/execution_recorder.h"

namespace flowrun {

class RunMetrics;
struct Workflow;

// Counts what one run reports into `metrics` and passes everything on to the inner recorder.
// Step types come from the workflow (a path mapped to its step). Borrows `metrics`, `workflow`
// and `clock` for its life. Never throws from a report: a metric lost is better than a run broken.
class MetricsRecorder : public ForwardingRecorder {
 public:
  MetricsRecorder(std::unique_ptr<ExecutionRecorder> inner, RunMetrics& metrics, const Workflow& workflow,
                  Clock& clock);

  std::optional<RecordedStep> recorded(const std::string& path) override;
  void step_started(const std::string& path, int attempt) override;
  void step_finished(const std::string& path, const std::string& status, int attempts, const Json& outputs,
                     const std::string& error_kind, const std::string& error, Durability durability) override;
  void event(const std::string& path, const std::string& kind, const std::string& message, const Json& data) override;
  void polled(const std::string& path, Duration latency, bool ok) override;

  // The run is ending: the hours of the instances still up are counted up to now (they stay in
  // flowrun_instances_running: nothing destroyed them).
  void settle_instances();

  // The type label of the step at `path` (cached per path without item indexes).
  std::string type_of(const std::string& path);

 private:
  struct Instance {
    TimePoint counted_from;
    double price_per_hour = 0;
  };
  // Notes when a step path was first seen: the executor asks recorded() as a step begins, so
  // this is its start in this process.
  void seen(const std::string& path);
  void count_instance_time(Instance& instance, TimePoint now);

  RunMetrics& metrics_;
  const Workflow& workflow_;
  const StepIndex index_;
  Clock& clock_;
  Mutex mutex_;
  std::map<std::string, TimePoint> started_ GUARDED_BY(mutex_);
  std::map<std::string, std::string> types_ GUARDED_BY(mutex_);
  std::map<std::string, Instance> instances_ GUARDED_BY(mutex_);
};

}  // namespace flowrun
