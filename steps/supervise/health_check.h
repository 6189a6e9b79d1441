#pragma once
// The health check stall-check runs after a recovery's on_stall steps, before on_healthy (the
// requeue): a command run in the worker, a condition over a probe within a grace period, or both.
#include <optional>
#include <string>

#include "engine/io/json.h"

namespace flowrun {

class StepContext;

struct HealthCheckResult {
  bool healthy = false;
  std::string detail;  // why not, or what passed: for the log and the failure
  Json observation;    // the last probe answer (null when none)
};

// Whether `spec` asks for any check: a non-empty `command` or a non-empty `until`.
bool health_check_configured(const Json& spec);

// A problem with a literal spec, for validate(); nullopt when it looks right.
std::optional<std::string> health_check_problem(const Json& spec);

// Runs `spec` = {command: [argv...], timeout: 30s, cwd, until: "processing > 0", probe (default
// `default_probe`), grace: 2m, interval: 5s}. The command must exit 0 within its timeout; then
// the probe is read every interval until `until` holds, at most `grace` (probe failures within
// the grace are the worker starting, not a verdict). Throws StepError only for cancellation, the
// step's deadline, a probe that answers with a permanent error, or a condition that does not
// evaluate.
HealthCheckResult run_health_check(const Json& spec, const Json& default_probe, StepContext& ctx);

}  // namespace flowrun
