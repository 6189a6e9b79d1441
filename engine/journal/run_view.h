#pragma once
// What `flowrun serve` (and `flowrun show`) render of runs: JSON built from the journal alone
// (runs, steps, events, live), so any process can read what a running flowrun records. One query
// per table whatever the number of items, so a 1,000-item for_each stays cheap to view.
#include <cstdint>
#include <string>

#include "engine/io/json.h"

namespace flowrun {

class Journal;

// {"runs":[{id, workflow, status, started_ms, updated_ms, duration_ms, cost, error}]}, newest
// first, at most `limit`. A running run's duration and cost run to `now_ms`.
Json runs_overview(Journal& journal, int limit, int64_t now_ms);

// One run, or null when the journal has no run `run_id`:
// {"run":{id, workflow, workflow_path, status, started_ms, updated_ms, duration_ms, error, cost, owner_pid},
//  "steps":[{path, status, attempts, started_ms, finished_ms, duration_ms, error_kind, error, outputs}],
//  "events":[the last 200, oldest first: {at_ms, path, kind, message, data}],
//  "for_each":[{path, totals:{items, pending, running, succeeded, failed, cancelled, cost},
//               items:[{index, path, item, status, progress, progress_text, elapsed_ms, cost,
//                       result_url, last_line, instance}]}],
//  "live":{PATH: merged live state}}
// An item's status is pending (not started), running, succeeded, partial (counted in
// totals.succeeded), failed or cancelled (running when its run ended without it). Absent
// values are null. Cost is in dollars: price_per_hour × the hours between instance_started and
// instance_destroyed (or now, or the run's end).
Json run_view(Journal& journal, const std::string& run_id, int64_t now_ms);

// The last log lines (at most 40) the live state holds for `path`: its own log_tail, else that
// of the step under it that reported one last (an item's waiting step). Empty when none.
Json log_tail(Journal& journal, const std::string& run_id, const std::string& path);

}  // namespace flowrun
