#pragma once

namespace flowrun {

class StepRegistry;

// Registers every built-in step type (exec, http, sleep, log, set, ...). One table, one place.
void register_builtin_steps(StepRegistry& registry);

}  // namespace flowrun
