#pragma once
#include <string>

#include "engine/executor.h"
#include "engine/step_registry.h"
#include "engine/workflow.h"

namespace flowrun {

// Mermaid flowchart text of a workflow's step tree.
std::string workflow_graph(const Workflow& workflow);

// Every registered step type with its parameters, for `flowrun steps`.
std::string step_catalogue(const StepRegistry& registry);
Json step_catalogue_json(const StepRegistry& registry);

// The end-of-run table: top-level steps always, nested ones when `all` or when they failed.
std::string run_summary(const RunResult& result, const std::string& run_id, bool all);

}  // namespace flowrun
