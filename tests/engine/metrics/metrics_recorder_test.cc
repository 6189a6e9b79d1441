#include "engine/metrics/metrics_recorder.h"

#include <prometheus/registry.h>

#include <atomic>
#include <catch2/catch.hpp>

#include "engine/io/step_error.h"
#include "engine/metrics/run_metrics.h"
#include "engine/model/workflow.h"
#include "support/harness.h"

using namespace flowrun;
using flowrun::test::Harness;
using flowrun::test::LambdaPoller;
using flowrun::test::LambdaStep;

namespace {

// The value of one series in `registry` (a histogram's sample count, with its sum in *sum);
// -1 when there is no such series.
double series(prometheus::Registry& registry, const std::string& name,
              const std::map<std::string, std::string>& labels = {}, double* sum = nullptr) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& metric : family.metric) {
      std::map<std::string, std::string> have;
      for (const auto& label : metric.label) have[label.name] = label.value;
      if (have != labels) continue;
      switch (family.type) {
        case prometheus::MetricType::Counter:
          return metric.counter.value;
        case prometheus::MetricType::Gauge:
          return metric.gauge.value;
        case prometheus::MetricType::Histogram:
          if (sum) *sum = metric.histogram.sample_sum;
          return static_cast<double>(metric.histogram.sample_count);
        default:
          return -2;
      }
    }
  }
  return -1;
}

// Remembers what reached it, to check that the metrics recorder passes everything on.
class InnerRecorder final : public ExecutionRecorder {
 public:
  std::optional<RecordedStep> recorded(const std::string&) override { return std::nullopt; }
  bool started_under(const std::string&) override { return false; }
  void step_started(const std::string&, int) override { ++started; }
  void step_finished(const std::string&, const std::string&, int, const Json&, const std::string&, const std::string&,
                     Durability) override {
    ++finished;
  }
  void event(const std::string&, const std::string& kind, const std::string&, const Json&) override {
    kinds.push_back(kind);
  }
  void polled(const std::string&, Duration, bool) override { ++polls; }
  std::atomic<int> started{0}, finished{0}, polls{0};
  std::vector<std::string> kinds;
};

Step action(const std::string& id, const std::string& type) {
  Step s;
  s.id = id;
  s.type = type;
  return s;
}

Workflow videos_workflow() {
  Workflow w;
  w.name = "videos";
  Step videos;
  videos.id = "videos";
  videos.kind = Step::Kind::kForEach;
  videos.steps.push_back(action("wait", "wait-for-marker"));
  videos.steps.push_back(action("provision", "provision"));
  w.steps.push_back(videos);
  return w;
}

}  // namespace

TEST_CASE("MetricsRecorder: counts attempts, durations, retries and failures by step type", "[metrics][recorder]") {
  prometheus::Registry registry;
  RunMetrics metrics(registry);
  const Workflow workflow = videos_workflow();
  VirtualClock clock;
  auto inner = std::make_unique<InnerRecorder>();
  InnerRecorder& seen = *inner;
  MetricsRecorder recorder(std::move(inner), metrics, workflow, clock);

  recorder.recorded("videos");
  recorder.recorded("videos[0].wait");  // the executor asks as a step begins
  clock.advance(std::chrono::seconds(90));
  recorder.event("videos[0].wait", "retry", "attempt 1/3 failed", Json{{"error_kind", "transient"}, {"type", "x"}});
  recorder.step_finished("videos[0].wait", "succeeded", 2, Json::object(), "", "", Durability::kNow);
  recorder.step_finished("videos[1].wait", "skipped", 0, Json::object(), "", "", Durability::kNow);
  recorder.event("videos[1].wait", "failed", "gave up", Json{{"error_kind", "exit:4"}});
  recorder.event("videos[1].wait", "timeout", "timed out", Json());
  recorder.event("videos[2].wait", "failed", "no data", Json());
  recorder.step_finished("videos", "partial", 0, Json::object(), "", "", Durability::kNow);
  recorder.event("nowhere", "retry", "?", Json{{"error_kind", std::string(300, 'k')}});

  CHECK(series(registry, "flowrun_step_attempts_total", {{"type", "wait-for-marker"}}) == 2);
  CHECK(series(registry, "flowrun_step_attempts_total", {{"type", "for_each"}}) == -1);  // a loop is its steps
  double sum = 0;
  CHECK(series(registry, "flowrun_step_duration_seconds", {{"type", "wait-for-marker"}}, &sum) == 1);
  CHECK(sum == Approx(90));
  // The type comes from the workflow, not from what an event's data claims.
  CHECK(series(registry, "flowrun_step_retries_total", {{"type", "wait-for-marker"}, {"error_kind", "transient"}}) ==
        1);
  CHECK(series(registry, "flowrun_step_failures_total", {{"type", "wait-for-marker"}, {"error_kind", "exit:4"}}) == 1);
  CHECK(series(registry, "flowrun_step_failures_total", {{"type", "wait-for-marker"}, {"error_kind", "timeout"}}) == 1);
  CHECK(series(registry, "flowrun_step_failures_total", {{"type", "wait-for-marker"}, {"error_kind", "unknown"}}) == 1);
  // A label value is bounded, whatever arrives.
  CHECK(series(registry, "flowrun_step_retries_total", {{"type", "unknown"}, {"error_kind", std::string(64, 'k')}}) ==
        1);

  CHECK(seen.finished == 3);
  CHECK(seen.kinds.size() == 5);
}

TEST_CASE("MetricsRecorder: items, stalls, polls and instance hours and cost", "[metrics][recorder]") {
  prometheus::Registry registry;
  RunMetrics metrics(registry);
  const Workflow workflow = videos_workflow();
  VirtualClock clock;
  auto inner = std::make_unique<InnerRecorder>();
  InnerRecorder& seen = *inner;
  MetricsRecorder recorder(std::move(inner), metrics, workflow, clock);

  recorder.event("videos", "item_succeeded", "", Json{{"item", "a"}, {"index", 0}});
  recorder.event("videos", "item_succeeded", "", Json{{"item", "b"}, {"index", 1}});
  recorder.event("videos", "item_failed", "", Json{{"item", "c"}, {"index", 2}, {"error", "secret-ish text"}});
  for (const char* kind : {"stalled", "stalled", "recovered", "restart_loop"})
    recorder.event("videos[0].x", kind, "", Json());
  CHECK(series(registry, "flowrun_items_total", {{"outcome", "succeeded"}}) == 2);
  CHECK(series(registry, "flowrun_items_total", {{"outcome", "failed"}}) == 1);
  CHECK(series(registry, "flowrun_stalls_total") == 2);
  CHECK(series(registry, "flowrun_stall_recoveries_total") == 1);
  CHECK(series(registry, "flowrun_restart_loops_total") == 1);

  recorder.polled("videos[3].wait", std::chrono::milliseconds(250), true);
  recorder.polled("videos[4].wait", std::chrono::milliseconds(750), false);
  CHECK(series(registry, "flowrun_polls_total", {{"type", "wait-for-marker"}, {"outcome", "ok"}}) == 1);
  CHECK(series(registry, "flowrun_polls_total", {{"type", "wait-for-marker"}, {"outcome", "error"}}) == 1);
  double sum = 0;
  CHECK(series(registry, "flowrun_poll_duration_seconds", {{"type", "wait-for-marker"}}, &sum) == 2);
  CHECK(sum == Approx(1.0));
  CHECK(seen.polls == 2);

  recorder.event("videos[0].provision", "instance_started", "", Json{{"instance", "i-1"}, {"price_per_hour", 2.0}});
  recorder.event("videos[1].provision", "instance_started", "", Json{{"instance", "i-2"}, {"price_per_hour", "4"}});
  CHECK(series(registry, "flowrun_instances_running") == 2);
  clock.advance(std::chrono::minutes(30));
  recorder.event("videos[0].destroy", "instance_destroyed", "", Json{{"instance", "i-1"}});
  recorder.event("videos[0].destroy", "instance_destroyed", "", Json{{"instance", "i-1"}});  // once only
  recorder.event("videos[9].destroy", "instance_destroyed", "", Json{{"instance", "i-9"}});  // an earlier process's
  CHECK(series(registry, "flowrun_instances_running") == 1);
  CHECK(series(registry, "flowrun_instance_hours_total") == Approx(0.5));
  CHECK(series(registry, "flowrun_instance_cost_dollars_total") == Approx(1.0));
  clock.advance(std::chrono::minutes(15));
  recorder.settle_instances();  // the run ends with i-2 still up: 45 minutes at $4
  CHECK(series(registry, "flowrun_instances_running") == 1);
  CHECK(series(registry, "flowrun_instance_hours_total") == Approx(1.25));
  CHECK(series(registry, "flowrun_instance_cost_dollars_total") == Approx(4.0));
  recorder.settle_instances();  // nothing counted twice
  CHECK(series(registry, "flowrun_instance_cost_dollars_total") == Approx(4.0));
}

TEST_CASE("MetricsRecorder: a real run reports retries, polls and failures with their kinds", "[metrics][recorder]") {
  Harness h;
  int flaky_calls = 0, polls = 0;
  h.registry.add(std::make_unique<LambdaStep>("flaky", [&](StepContext&) -> Json {
    if (++flaky_calls < 3) throw StepError::transient("not yet");
    return {};
  }));
  h.registry.add(std::make_unique<LambdaStep>(
      "broken", [](StepContext&) -> Json { throw StepError::permanent("no such thing"); }));
  h.registry.add(std::make_unique<LambdaPoller>("waiter", [&](StepContext&) -> PollResult {
    ++polls;
    if (polls == 2) throw StepError::transient("probe down");
    PollResult r;
    r.status = polls >= 4 ? PollStatus::kDone : PollStatus::kPending;
    return r;
  }));
  REQUIRE(h.load(R"(steps:
  - id: flaky
    type: flaky
    retry: {attempts: 3, backoff: {initial: 1s, factor: 1, jitter: none}}
  - id: watch
    type: waiter
    with: {interval: 10s}
  - id: bad
    type: broken
    continue_on_error: true
)") == "");
  prometheus::Registry registry;
  RunMetrics metrics(registry);
  auto inner = std::make_unique<InnerRecorder>();
  MetricsRecorder recorder(std::move(inner), metrics, *h.loaded.workflow, h.virtual_clock);
  ExecutorOptions options;
  options.recorder = &recorder;
  RunResult r = h.run(Json::object(), options);
  CHECK(r.status == RunState::kPartial);

  CHECK(series(registry, "flowrun_step_attempts_total", {{"type", "flaky"}}) == 3);
  CHECK(series(registry, "flowrun_step_retries_total", {{"type", "flaky"}, {"error_kind", "transient"}}) == 2);
  CHECK(series(registry, "flowrun_step_failures_total", {{"type", "broken"}, {"error_kind", "permanent"}}) == 1);
  CHECK(series(registry, "flowrun_step_attempts_total", {{"type", "waiter"}}) == 1);
  CHECK(series(registry, "flowrun_polls_total", {{"type", "waiter"}, {"outcome", "ok"}}) == 3);
  CHECK(series(registry, "flowrun_polls_total", {{"type", "waiter"}, {"outcome", "error"}}) == 1);
  double sum = 0;
  CHECK(series(registry, "flowrun_step_duration_seconds", {{"type", "flaky"}}, &sum) == 1);
  CHECK(sum == Approx(2.0));  // two 1s backoffs in virtual time
  CHECK(series(registry, "flowrun_step_duration_seconds", {{"type", "waiter"}}, &sum) == 1);
  CHECK(sum >= 30.0);  // three waits of at least the 10s interval
}
