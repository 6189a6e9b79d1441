#pragma once
#include <string>

namespace flowrun {

struct Step;
struct Workflow;

// The step a recorded path names in `workflow`: "videos[2].wait" is the step `wait` in the body
// of the for_each `videos`; "finally.x", "grp.finally.x" and "watch.on_stall#2.restart" follow
// finally lists and nested lists. Null when the path names no step of the workflow.
const Step* step_at_path(const Workflow& workflow, const std::string& path);

// The metric label of the step at `path`: its registered type for an action ("exec", "lua"),
// "for_each" or "group" for the others, "unknown" when the path names no step. Always one of a
// bounded set, never text from an item or a path.
std::string step_type_label(const Workflow& workflow, const std::string& path);

}  // namespace flowrun
