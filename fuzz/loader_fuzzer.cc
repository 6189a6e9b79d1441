// libFuzzer target: the workflow loader on arbitrary bytes. The loader's contract is that a bad
// file gives diagnostics, never an exception, a crash or a hang; any of those is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/load/loader.h"
#include "engine/step_api/step_registry.h"
#include "steps/catalog.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const flowrun::StepRegistry* registry = [] {
    auto* r = new flowrun::StepRegistry();
    flowrun::register_builtin_steps(*r);
    return r;
  }();
  const std::string text(reinterpret_cast<const char*>(data), size);
  flowrun::LoadResult result = flowrun::load_workflow_text(text, "fuzz.yaml", *registry, "/nonexistent");
  // Every diagnostic must point inside the text it was made from (a caret past the end would
  // read out of bounds when printed).
  for (const auto& d : result.diagnostics.items()) (void)flowrun::format_diagnostic(d, text);
  return 0;
}
