#include "engine/cli/metrics_observer.h"

#include <prometheus/registry.h>

#include <iostream>

#include "engine/cli/cli_common.h"
#include "engine/cli/commands.h"
#include "engine/io/clock.h"
#include "engine/io/utf8.h"
#include "engine/journal/journal.h"
#include "engine/metrics/journal_metrics.h"
#include "engine/metrics/metrics_recorder.h"
#include "engine/metrics/metrics_server.h"
#include "engine/metrics/run_metrics.h"
#include "engine/model/workflow.h"

namespace flowrun {
namespace {

class MetricsObserver : public RunObserver {
 public:
  MetricsObserver(std::shared_ptr<prometheus::Registry> registry, std::unique_ptr<MetricsServer> server)
      : registry_(std::move(registry)), metrics_(*registry_), server_(std::move(server)) {}

  std::unique_ptr<ExecutionRecorder> run_started(const RunContext& run,
                                                 std::unique_ptr<ExecutionRecorder> recorder) override {
    auto counting = std::make_unique<MetricsRecorder>(std::move(recorder), metrics_, run.workflow, clock_);
    current_ = counting.get();
    return counting;
  }

  void run_ending(const RunContext& run, RunState state, const RunResult& result) override {
    (void)result;
    if (current_) current_->settle_instances();
    metrics_.run_ended(run.workflow.name, to_string(state));
  }

  void run_ended(const RunContext& run, RunState state) override {
    (void)run, (void)state;
    current_ = nullptr;  // its recorder is gone
  }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  RunMetrics metrics_;
  std::unique_ptr<MetricsServer> server_;  // after metrics_: stops serving before they go
  RealClock clock_;
  MetricsRecorder* current_ = nullptr;  // the running run's, between run_started and run_ended
};

}  // namespace

bool add_metrics_observer(RunObservers& observers, const ExecOptions& o, Journal& journal) {
  auto registry = process_metrics_registry();
  std::unique_ptr<MetricsServer> server;
  if (!o.metrics.empty()) {
    try {
      server = std::make_unique<MetricsServer>(o.metrics, o.metrics_public, registry, journal.path());
    } catch (const std::exception& e) {
      print_error(e.what());
      return false;
    }
    if (o.log_format == "json")
      std::cerr << dump_json(
                       Json{{"level", "INFO"}, {"message", "metrics at " + server->url()}, {"url", server->url()}})
                << "\n";
    else if (!o.quiet)
      std::cerr << "flowrun: metrics at " << server->url() << "\n";
  } else if (o.metrics_public) {
    print_error("--metrics-public needs --metrics HOST:PORT");
    return false;
  }
  observers.add(std::make_unique<MetricsObserver>(std::move(registry), std::move(server)));
  return true;
}

}  // namespace flowrun
