#pragma once
// The basic step types: run a program, call HTTP, query SQLite, wait, log, set values, queue work.
#include <memory>

#include "engine/step_api/step_type.h"

namespace flowrun {

std::unique_ptr<StepType> make_exec_step();
std::unique_ptr<StepType> make_http_step();
std::unique_ptr<StepType> make_sql_step();
std::unique_ptr<StepType> make_sleep_step();
std::unique_ptr<StepType> make_log_step();
std::unique_ptr<StepType> make_set_step();
std::unique_ptr<StepType> make_queue_step();

}  // namespace flowrun
