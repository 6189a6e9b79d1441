#pragma once
#include <filesystem>
#include <optional>
#include <string>

#include "engine/model/diagnostics.h"
#include "engine/model/workflow.h"

namespace flowrun {

class StepRegistry;

struct LoadResult {
  std::optional<Workflow> workflow;  // set only when there are no diagnostics
  Diagnostics diagnostics;
  std::string source;  // the text read, for printing carets
};

// Reads and validates a workflow file against the registry's step types. Every problem found
// is collected with its file:line:col; nothing is thrown for a bad workflow.
LoadResult load_workflow_file(const std::string& path, const StepRegistry& registry);
LoadResult load_workflow_text(const std::string& text, const std::string& path, const StepRegistry& registry,
                              const std::filesystem::path& project_root);

// The directory scripts/ is resolved against: the first of the workflow's directory and its
// parent that holds a scripts/ folder; else the current directory.
std::filesystem::path find_project_root(const std::string& workflow_path);

}  // namespace flowrun
