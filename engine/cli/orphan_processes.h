#pragma once
#include <string>

#include "engine/io/duration.h"

namespace flowrun {

class Journal;
class StepLog;

// Stops what a crashed flowrun left running of run `run_id`: every process group the journal
// still records whose processes still run (the leader's start time must match, so a reused pid
// is never touched) is sent SIGTERM, and SIGKILL after `grace`; then its record is cleared.
// Returns how many groups were stopped. Call it before any step of the run runs again.
int stop_orphaned_process_groups(Journal& journal, const std::string& run_id, Duration grace, const StepLog& log);

}  // namespace flowrun
