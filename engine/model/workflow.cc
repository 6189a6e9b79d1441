#include "engine/model/workflow.h"

namespace flowrun {

void collect_step_names(const std::vector<Step>& steps, std::set<std::string>& out) {
  for (const auto& s : steps) {
    out.insert(s.id);
    collect_step_names(s.steps, out);
    collect_step_names(s.finally, out);
    for (const auto& [name, list] : s.nested) {
      out.insert(name);
      collect_step_names(list, out);
    }
  }
}

StepPolicies effective_policies(const Step& step, const Workflow& workflow) {
  StepPolicies p = step.policies;
  if (!p.retry) p.retry = workflow.defaults.retry ? *workflow.defaults.retry : RetryPolicy{};
  if (!p.timeout) p.timeout = workflow.defaults.timeout;
  if (!p.attempt_timeout) p.attempt_timeout = workflow.defaults.attempt_timeout;
  return p;
}

}  // namespace flowrun
