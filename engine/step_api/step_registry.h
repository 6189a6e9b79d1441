#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/step_api/step_type.h"

namespace flowrun {

// Every step type a workflow can name. Built by main (or by a test), then read-only.
class StepRegistry {
 public:
  // Throws std::invalid_argument when the name is taken: a Lua type cannot shadow a built-in.
  void add(std::unique_ptr<StepType> type);
  const StepType* find(const std::string& name) const;
  std::vector<const StepType*> all() const;  // sorted by name
  std::vector<std::string> names() const;

 private:
  std::map<std::string, std::unique_ptr<StepType>> types_;
};

}  // namespace flowrun
