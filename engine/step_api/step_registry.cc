#include "engine/step_api/step_registry.h"

#include <stdexcept>

#include "engine/io/step_error.h"
#include "engine/step_api/step_context.h"

namespace flowrun {

Json StepType::run(StepContext&) const {
  throw StepError::permanent("step type '" + info().name + "' is a poller and has no run()");
}

std::unique_ptr<Poller> StepType::start_polling(StepContext&) const {
  throw StepError::permanent("step type '" + info().name + "' is not a poller");
}

void StepRegistry::add(std::unique_ptr<StepType> type) {
  const std::string name = type->info().name;
  if (types_.count(name)) throw std::invalid_argument("step type '" + name + "' is registered twice");
  types_.emplace(name, std::move(type));
}

const StepType* StepRegistry::find(const std::string& name) const {
  auto it = types_.find(name);
  return it == types_.end() ? nullptr : it->second.get();
}

std::vector<const StepType*> StepRegistry::all() const {
  std::vector<const StepType*> out;
  for (const auto& [name, type] : types_) out.push_back(type.get());
  return out;
}

std::vector<std::string> StepRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, type] : types_) out.push_back(name);
  return out;
}

}  // namespace flowrun
