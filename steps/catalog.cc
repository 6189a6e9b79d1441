#include "steps/catalog.h"

#include "engine/step_api/step_registry.h"
#include "steps/basic/basic_steps.h"
#include "steps/instance/instance_steps.h"
#include "steps/supervise/supervise_steps.h"

namespace flowrun {

void register_builtin_steps(StepRegistry& registry) {
  using Factory = std::unique_ptr<StepType> (*)();
  static const Factory kBuiltins[] = {
      make_exec_step,
      make_http_step,
      make_log_step,
      make_set_step,
      make_sleep_step,
      make_provision_step,
      make_wait_for_marker_step,
      make_destroy_step,
      make_stall_check_step,
      make_restart_container_step,
      make_queue_step,
      make_sql_step,
      make_watch_instance_step,
  };
  for (Factory make : kBuiltins) registry.add(make());
}

}  // namespace flowrun
