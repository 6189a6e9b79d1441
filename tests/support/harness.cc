#include "support/harness.h"

#include <thread>

#include "engine/load/inputs.h"
#include "steps/catalog.h"

namespace flowrun::test {

Harness::Harness() {
  register_builtin_steps(registry);
  LogOptions options;
  options.console = false;
  options.capture = true;
  logs = std::make_unique<LogHub>(options, redactor);
}

std::string Harness::load(const std::string& yaml) {
  loaded = load_workflow_text(yaml, "test.yaml", registry, FLOWRUN_SOURCE_DIR);
  std::string out;
  for (const auto& d : loaded.diagnostics.items()) out += format_diagnostic(d, loaded.source);
  return out;
}

RunResult Harness::run(const Json& inputs, ExecutorOptions options) {
  if (!loaded.workflow) throw std::logic_error("workflow not loaded");
  Diagnostics problems;
  std::map<std::string, std::string> overrides;
  for (const auto& [k, v] : inputs.items()) overrides[k] = v.is_string() ? v.get<std::string>() : v.dump();
  Json resolved = resolve_inputs(*loaded.workflow, overrides, problems);
  if (!problems.empty()) throw std::logic_error(problems.items()[0].message);
  Services services{*http, processes, clock(), redactor, FLOWRUN_SOURCE_DIR, state_dir};
  services.recorder = options.recorder;  // as the CLI does: steps report events and live states there
  Executor executor(*loaded.workflow, registry, services, random, *logs, options);
  return executor.run(resolved, cancel, finally_cancel);
}

RunResult Harness::run_cancelled_after(Duration delay, Duration* took) {
  use_real_clock = true;
  std::thread canceller([&] {
    std::this_thread::sleep_for(delay);
    cancel.cancel("interrupted by SIGINT");
  });
  auto t0 = std::chrono::steady_clock::now();
  RunResult r = run();
  canceller.join();
  *took = std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - t0);
  return r;
}

bool Harness::log_contains(const std::string& text) const {
  for (const auto& line : log_lines())
    if (line.find(text) != std::string::npos) return true;
  return false;
}

std::vector<std::string> diagnostics_of(const std::string& yaml) {
  Harness h;
  h.load(yaml);
  std::vector<std::string> out;
  for (const auto& d : h.loaded.diagnostics.items())
    out.push_back(std::to_string(d.loc.line) + ":" + std::to_string(d.loc.col) + ": " + d.message +
                  (d.hint.empty() ? "" : " | " + d.hint));
  return out;
}

}  // namespace flowrun::test
