#include "engine/metrics/step_type_of.h"

#include <vector>

#include "engine/model/workflow.h"

namespace flowrun {
namespace {

// "videos[2]" -> "videos", "on_stall#2" -> "on_stall": an item index or a nested run's number.
std::string bare(std::string segment) {
  const size_t cut = segment.find_first_of("[#");
  if (cut != std::string::npos) segment.resize(cut);
  return segment;
}

const Step* find_id(const std::vector<Step>& steps, const std::string& id, const StepIndex* index) {
  if (index) return index->find(steps, id);
  for (const auto& step : steps)
    if (step.id == id) return &step;
  return nullptr;
}

}  // namespace

StepIndex::StepIndex(const Workflow& workflow) {
  add(workflow.steps);
  add(workflow.finally);
}

void StepIndex::add(const std::vector<Step>& list) {
  auto& ids = lists_[&list];
  for (const auto& step : list) {
    ids.emplace(step.id, &step);  // keeps the first, like the search
    add(step.steps);
    add(step.finally);
    for (const auto& [name, nested] : step.nested) add(nested);
  }
}

const Step* StepIndex::find(const std::vector<Step>& list, const std::string& id) const {
  auto it = lists_.find(&list);
  if (it == lists_.end()) return find_id(list, id, nullptr);
  auto step = it->second.find(id);
  return step == it->second.end() ? nullptr : step->second;
}

const Step* step_at_path(const Workflow& workflow, const std::string& path, const StepIndex* index) {
  const std::vector<Step>* list = &workflow.steps;
  const Step* current = nullptr;
  size_t start = 0;
  while (start <= path.size()) {
    size_t dot = path.find('.', start);
    if (dot == std::string::npos) dot = path.size();
    const std::string segment = bare(path.substr(start, dot - start));
    start = dot + 1;
    if (segment.empty()) return nullptr;
    if (segment == "finally") {
      // Switches the list; a path that ends on it names no step.
      if (!current && list != &workflow.steps) return nullptr;
      list = current ? &current->finally : &workflow.finally;
      current = nullptr;
      if (start > path.size()) return nullptr;
      continue;
    }
    if (current) {
      if (auto nested = current->nested.find(segment); nested != current->nested.end()) {
        list = &nested->second;
        current = nullptr;
        if (start > path.size()) return nullptr;
        continue;
      }
      list = &current->steps;
    }
    current = find_id(*list, segment, index);
    if (!current) return nullptr;
  }
  return current;
}

std::string step_type_label(const Workflow& workflow, const std::string& path, const StepIndex* index) {
  const Step* step = step_at_path(workflow, path, index);
  if (!step) return "unknown";
  switch (step->kind) {
    case Step::Kind::kForEach:
      return "for_each";
    case Step::Kind::kGroup:
      return "group";
    case Step::Kind::kAction:
      break;
  }
  return step->type.empty() ? "unknown" : step->type;
}

}  // namespace flowrun
