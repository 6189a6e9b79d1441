#pragma once
#include <string>

#include "engine/model/workflow.h"
#include "engine/runtime/executor.h"
#include "engine/step_api/step_registry.h"

namespace flowrun {

// Mermaid flowchart text of a workflow's step tree.
std::string workflow_graph(const Workflow& workflow);

// Every registered step type with its parameters, for `flowrun steps`.
std::string step_catalogue(const StepRegistry& registry);
Json step_catalogue_json(const StepRegistry& registry);

// The end-of-run report: a head line with the run's state, each failure once (a failed
// `finally` step first, since a cleanup that did not happen costs the most), then the table of
// top-level steps (every step when `all`).
std::string run_summary(const RunResult& result, RunState state, const std::string& run_id, bool all);
// The same as one JSON object, for --log-format json.
Json run_summary_json(const RunResult& result, RunState state, const std::string& run_id);

}  // namespace flowrun
