#pragma once
// Shared test scaffolding: load a workflow from text, run it in virtual time with captured
// logs, and define step types from lambdas.
#include <functional>
#include <memory>
#include <string>

#include "engine/io/clock.h"
#include "engine/io/http_client.h"
#include "engine/io/logging.h"
#include "engine/io/process_runner.h"
#include "engine/io/redactor.h"
#include "engine/load/loader.h"
#include "engine/runtime/executor.h"
#include "engine/step_api/step_context.h"
#include "engine/step_api/step_registry.h"

namespace flowrun::test {

// A step type whose run() is a lambda.
class LambdaStep final : public StepType {
 public:
  LambdaStep(std::string name, std::function<Json(StepContext&)> fn,
             std::vector<ParamSpec> params = {{"*", ParamType::kAny}})
      : fn_(std::move(fn)) {
    info_.name = std::move(name);
    info_.summary = "test step";
    info_.params = std::move(params);
  }
  const StepInfo& info() const override { return info_; }
  Json run(StepContext& ctx) const override { return fn_(ctx); }

 private:
  StepInfo info_;
  std::function<Json(StepContext&)> fn_;
};

// A poller type whose poll() is a lambda.
class LambdaPoller final : public StepType {
 public:
  LambdaPoller(std::string name, std::function<PollResult(StepContext&)> fn) : fn_(std::move(fn)) {
    info_.name = std::move(name);
    info_.poller = true;
    info_.params = {{"*", ParamType::kAny}};
  }
  const StepInfo& info() const override { return info_; }
  std::unique_ptr<Poller> start_polling(StepContext&) const override {
    struct P final : Poller {
      explicit P(const std::function<PollResult(StepContext&)>& f) : f_(f) {}
      PollResult poll(StepContext& ctx) override { return f_(ctx); }
      const std::function<PollResult(StepContext&)>& f_;
    };
    return std::make_unique<P>(fn_);
  }

 private:
  StepInfo info_;
  std::function<PollResult(StepContext&)> fn_;
};

// An HTTP client that must not be used (unit tests that need none).
class NoHttp final : public HttpClient {
 public:
  HttpResponse send(const HttpRequest& r, const CancelToken&) override {
    throw std::logic_error("unexpected HTTP request to " + r.url);
  }
};

// Everything a run needs, with virtual time by default.
struct Harness {
  StepRegistry registry;
  VirtualClock virtual_clock;
  RealClock real_clock;
  bool use_real_clock = false;
  NoHttp no_http;
  HttpClient* http = &no_http;
  SystemProcessRunner processes;
  Redactor redactor;
  FixedRandom random{0.5};
  std::unique_ptr<LogHub> logs;
  LoadResult loaded;
  std::string state_dir;  // where the local provider keeps instances; empty: the source dir's .flowrun

  Harness();
  // Loads YAML text as "test.yaml"; returns the diagnostics text (empty when it loaded).
  std::string load(const std::string& yaml);
  // Runs the loaded workflow; `cancel` may be cancelled by a step to simulate Ctrl+C.
  RunResult run(const Json& inputs = Json::object(), ExecutorOptions options = {});
  // Runs with the real clock and cancels (as Ctrl+C would) after `delay`; `took` receives the
  // run's wall time, to check that cancellation is prompt.
  RunResult run_cancelled_after(Duration delay, Duration* took);
  CancelToken finally_cancel;
  CancelToken cancel{finally_cancel};
  std::vector<std::string> log_lines() const { return logs->captured(); }
  bool log_contains(const std::string& text) const;
  Clock& clock() { return use_real_clock ? static_cast<Clock&>(real_clock) : virtual_clock; }
};

// All diagnostics of loading `yaml` with the built-in steps, formatted one per line as
// "line:col: message | hint".
std::vector<std::string> diagnostics_of(const std::string& yaml);

}  // namespace flowrun::test
