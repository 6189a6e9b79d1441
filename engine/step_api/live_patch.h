#pragma once
// How a live patch (ExecutionRecorder::live) merges into a step's live state: as a JSON merge
// patch (RFC 7396), except its member `log_tail_added`, {"lines": [...], "keep": N}, whose lines
// go at the end of the state's `log_tail`, which then keeps its last N. A monitor that read a
// few lines sends them alone: the lines before them are the state's, so the monitor need not
// keep them between its polls (10,000 waiting monitors, 2 KiB each).
#include <cstddef>
#include <cstdint>

#include "engine/io/json.h"

namespace flowrun {

inline constexpr const char* kLogTailAdded = "log_tail_added";

// The patch that adds `lines` to log_tail, keeping its last `keep`.
Json log_tail_added(Json lines, size_t keep);

// `state` with `patch` merged in. Added lines leave log_tail at most min(keep, `most_lines`)
// long (`most_lines` when keep is not a count).
// A patch passed as an rvalue gives its added lines to the tail instead of copies.
void merge_live_patch(Json& state, Json patch, size_t most_lines = SIZE_MAX);

}  // namespace flowrun
