#pragma once
#include <string>
#include <unordered_map>
#include <vector>

namespace flowrun {

struct Step;
struct Workflow;

// The ids of every step list of a workflow in hash maps, built once, for the lookups below: a
// search of the list per recorded step made a run of n steps cost n² (the metrics recorder
// looks up every step it sees). Borrows the workflow, which must outlive it.
class StepIndex {
 public:
  explicit StepIndex(const Workflow& workflow);
  // The first step of `list` with this id, as a search of the list would find; null if none.
  const Step* find(const std::vector<Step>& list, const std::string& id) const;

 private:
  void add(const std::vector<Step>& list);
  std::unordered_map<const std::vector<Step>*, std::unordered_map<std::string, const Step*>> lists_;
};

// The step a recorded path names in `workflow`: "videos[2].wait" is the step `wait` in the body
// of the for_each `videos`; "finally.x", "grp.finally.x" and "watch.on_stall#2.restart" follow
// finally lists and nested lists. Null when the path names no step of the workflow.
// With an index of that workflow, each list is searched through it.
const Step* step_at_path(const Workflow& workflow, const std::string& path, const StepIndex* index = nullptr);

// The metric label of the step at `path`: its registered type for an action ("exec", "lua"),
// "for_each" or "group" for the others, "unknown" when the path names no step. Always one of a
// bounded set, never text from an item or a path.
std::string step_type_label(const Workflow& workflow, const std::string& path, const StepIndex* index = nullptr);

}  // namespace flowrun
