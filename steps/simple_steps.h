#pragma once
#include <memory>

#include "engine/step_type.h"

namespace flowrun {

std::unique_ptr<StepType> make_sleep_step();
std::unique_ptr<StepType> make_log_step();
std::unique_ptr<StepType> make_set_step();
std::unique_ptr<StepType> make_exec_step();
std::unique_ptr<StepType> make_http_step();
std::unique_ptr<StepType> make_stall_check_step();
std::unique_ptr<StepType> make_restart_container_step();
std::unique_ptr<StepType> make_queue_step();
std::unique_ptr<StepType> make_sql_step();

}  // namespace flowrun
