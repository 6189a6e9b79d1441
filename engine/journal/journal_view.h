#pragma once
#include <string>
#include <vector>

#include "engine/journal/journal.h"

namespace flowrun {

// `flowrun runs`: one line per run, newest first.
std::string runs_table(const std::vector<RunRow>& runs);
// `flowrun show`: the run, then its step executions as a tree with status, attempts, duration
// and outputs (shortened).
std::string run_details(const RunRow& run, const std::vector<Json>& steps);
std::string format_time_ms(int64_t ms);
// `flowrun show`: each for_each of a run view (run_view.h) as an item table with its totals;
// "" when the run has none.
std::string items_table(const Json& view);

}  // namespace flowrun
