#pragma once
// The step types that keep a worker healthy: stall-check (with its probe and health check) and
// restart-container.
#include <memory>

#include "engine/step_api/step_type.h"

namespace flowrun {

std::unique_ptr<StepType> make_stall_check_step();
std::unique_ptr<StepType> make_restart_container_step();

}  // namespace flowrun
