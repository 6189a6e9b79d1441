#include "engine/metrics/run_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace flowrun {

std::string bounded_label(const std::string& value) {
  if (value.empty()) return "unknown";
  if (value.size() <= RunMetrics::kMaxLabelBytes) return value;
  size_t cut = RunMetrics::kMaxLabelBytes;
  while (cut > 0 && (static_cast<unsigned char>(value[cut]) & 0xC0) == 0x80) --cut;  // not inside a character
  return value.substr(0, cut);
}

namespace {

// Step durations run from a second to days (a GPU job); polls from milliseconds to a slow API.
const prometheus::Histogram::BucketBoundaries kStepBuckets{0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 14400, 43200, 86400};
const prometheus::Histogram::BucketBoundaries kPollBuckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

}  // namespace

struct RunMetrics::Families {
  explicit Families(prometheus::Registry& r)
      : runs(prometheus::BuildCounter()
                 .Name("flowrun_runs_total")
                 .Help("Runs ended, by workflow and outcome")
                 .Register(r)),
        attempts(prometheus::BuildCounter()
                     .Name("flowrun_step_attempts_total")
                     .Help("Attempts of action steps, by step type")
                     .Register(r)),
        retries(prometheus::BuildCounter()
                    .Name("flowrun_step_retries_total")
                    .Help("Failed attempts that were retried, by step type and error kind")
                    .Register(r)),
        failures(prometheus::BuildCounter()
                     .Name("flowrun_step_failures_total")
                     .Help("Steps that failed after their last attempt, by step type and error kind")
                     .Register(r)),
        durations(prometheus::BuildHistogram()
                      .Name("flowrun_step_duration_seconds")
                      .Help("Duration of action steps from first start to finish, retries included")
                      .Register(r)),
        polls(prometheus::BuildCounter()
                  .Name("flowrun_polls_total")
                  .Help("Polls of waiting steps, by step type and outcome (ok, error)")
                  .Register(r)),
        poll_durations(prometheus::BuildHistogram()
                           .Name("flowrun_poll_duration_seconds")
                           .Help("Duration of one poll of a waiting step")
                           .Register(r)),
        stalls(prometheus::BuildCounter()
                   .Name("flowrun_stalls_total")
                   .Help("Stalls detected by stall-check")
                   .Register(r)
                   .Add({})),
        recoveries(prometheus::BuildCounter()
                       .Name("flowrun_stall_recoveries_total")
                       .Help("Recoveries after a stall")
                       .Register(r)
                       .Add({})),
        restart_loops(prometheus::BuildCounter()
                          .Name("flowrun_restart_loops_total")
                          .Help("Times stall-check gave up after repeated recoveries")
                          .Register(r)
                          .Add({})),
        instances(prometheus::BuildGauge()
                      .Name("flowrun_instances_running")
                      .Help("Instances started and not yet destroyed")
                      .Register(r)
                      .Add({})),
        instance_hours(prometheus::BuildCounter()
                           .Name("flowrun_instance_hours_total")
                           .Help("Instance-hours, counted at destroy or at the run's end")
                           .Register(r)
                           .Add({})),
        instance_cost(prometheus::BuildCounter()
                          .Name("flowrun_instance_cost_dollars_total")
                          .Help("Estimated instance cost in dollars (price_per_hour times hours)")
                          .Register(r)
                          .Add({})),
        items(prometheus::BuildCounter()
                  .Name("flowrun_items_total")
                  .Help("for_each items finished, by outcome (succeeded, failed)")
                  .Register(r)) {}

  prometheus::Family<prometheus::Counter>& runs;
  prometheus::Family<prometheus::Counter>& attempts;
  prometheus::Family<prometheus::Counter>& retries;
  prometheus::Family<prometheus::Counter>& failures;
  prometheus::Family<prometheus::Histogram>& durations;
  prometheus::Family<prometheus::Counter>& polls;
  prometheus::Family<prometheus::Histogram>& poll_durations;
  prometheus::Counter& stalls;
  prometheus::Counter& recoveries;
  prometheus::Counter& restart_loops;
  prometheus::Gauge& instances;
  prometheus::Counter& instance_hours;
  prometheus::Counter& instance_cost;
  prometheus::Family<prometheus::Counter>& items;
};

RunMetrics::RunMetrics(prometheus::Registry& registry) : f_(std::make_unique<Families>(registry)) {}
RunMetrics::~RunMetrics() = default;

void RunMetrics::run_ended(const std::string& workflow, const std::string& outcome) {
  f_->runs.Add({{"workflow", bounded_label(workflow)}, {"outcome", bounded_label(outcome)}}).Increment();
}

void RunMetrics::step_finished(const std::string& type, int attempts) {
  if (attempts > 0) f_->attempts.Add({{"type", bounded_label(type)}}).Increment(attempts);
}

void RunMetrics::step_duration(const std::string& type, double seconds) {
  f_->durations.Add({{"type", bounded_label(type)}}, kStepBuckets).Observe(seconds);
}

void RunMetrics::retried(const std::string& type, const std::string& error_kind) {
  f_->retries.Add({{"type", bounded_label(type)}, {"error_kind", bounded_label(error_kind)}}).Increment();
}

void RunMetrics::failed(const std::string& type, const std::string& error_kind) {
  f_->failures.Add({{"type", bounded_label(type)}, {"error_kind", bounded_label(error_kind)}}).Increment();
}

void RunMetrics::polled(const std::string& type, double seconds, bool ok) {
  f_->polls.Add({{"type", bounded_label(type)}, {"outcome", ok ? "ok" : "error"}}).Increment();
  f_->poll_durations.Add({{"type", bounded_label(type)}}, kPollBuckets).Observe(seconds);
}

void RunMetrics::stalled() { f_->stalls.Increment(); }
void RunMetrics::recovered() { f_->recoveries.Increment(); }
void RunMetrics::restart_loop() { f_->restart_loops.Increment(); }
void RunMetrics::instance_started() { f_->instances.Increment(); }
void RunMetrics::instance_destroyed() { f_->instances.Decrement(); }

void RunMetrics::instance_time(double hours, double dollars) {
  if (hours > 0) f_->instance_hours.Increment(hours);
  if (dollars > 0) f_->instance_cost.Increment(dollars);
}

void RunMetrics::item(const std::string& outcome) { f_->items.Add({{"outcome", bounded_label(outcome)}}).Increment(); }

}  // namespace flowrun
