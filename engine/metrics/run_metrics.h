#pragma once
#include <memory>
#include <string>

namespace prometheus {
class Counter;
template <typename T>
class Family;
class Gauge;
class Histogram;
class Registry;
}  // namespace prometheus

namespace flowrun {

// The metrics of the runs of this process, in a Prometheus registry. Label values come from
// bounded sets only (workflow names, step types, error kinds, channel names, fixed outcomes),
// each cut to kMaxLabelBytes; never an item, a path, an error message or a secret. Thread-safe.
//
// The names (docs/observability.md copies this list):
//   flowrun_runs_total{workflow,outcome}            counter  runs ended: succeeded, failed, partial,
//                                                            cancelled, detached
//   flowrun_step_attempts_total{type}               counter  attempts of action steps
//   flowrun_step_retries_total{type,error_kind}     counter  failed attempts that were retried
//   flowrun_step_failures_total{type,error_kind}    counter  steps that gave up (error_kind of the last
//                                                            attempt; "timeout" for the step timeout)
//   flowrun_step_duration_seconds{type}             histogram  an action step, first start to finish
//   flowrun_polls_total{type,outcome}               counter  polls of waiting steps: ok, error
//   flowrun_poll_duration_seconds{type}             histogram  one poll
//   flowrun_stalls_total                            counter  stall-check hit its threshold
//   flowrun_stall_recoveries_total                  counter  moving again after a stall
//   flowrun_restart_loops_total                     counter  stall-check gave up
//   flowrun_instances_running                       gauge    instances started and not destroyed
//   flowrun_instance_hours_total                    counter  instance-hours, at destroy or run end
//   flowrun_instance_cost_dollars_total             counter  estimated cost: price_per_hour x hours
//   flowrun_items_total{outcome}                    counter  for_each items: succeeded, failed
//   flowrun_notifications_total{channel,outcome}    counter  outbox rows: sent, failed, suppressed,
//                                                            pending, digested (journal_metrics.h)
class RunMetrics {
 public:
  explicit RunMetrics(prometheus::Registry& registry);
  ~RunMetrics();

  void run_ended(const std::string& workflow, const std::string& outcome);
  void step_finished(const std::string& type, int attempts);
  void step_duration(const std::string& type, double seconds);
  void retried(const std::string& type, const std::string& error_kind);
  void failed(const std::string& type, const std::string& error_kind);
  void polled(const std::string& type, double seconds, bool ok);
  void stalled();
  void recovered();
  void restart_loop();
  void instance_started();
  void instance_destroyed();
  void instance_time(double hours, double dollars);
  void item(const std::string& outcome);

  static constexpr size_t kMaxLabelBytes = 64;

 private:
  struct Families;
  std::unique_ptr<Families> f_;
};

// A label value cut to RunMetrics::kMaxLabelBytes (at a UTF-8 boundary); "unknown" when empty.
std::string bounded_label(const std::string& value);

}  // namespace flowrun
