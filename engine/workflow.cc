#include "engine/workflow.h"

namespace flowrun {

StepPolicies effective_policies(const Step& step, const Workflow& workflow) {
  StepPolicies p = step.policies;
  if (!p.retry) p.retry = workflow.defaults.retry ? *workflow.defaults.retry : RetryPolicy{};
  if (!p.timeout) p.timeout = workflow.defaults.timeout;
  if (!p.attempt_timeout) p.attempt_timeout = workflow.defaults.attempt_timeout;
  return p;
}

}  // namespace flowrun
