#pragma once
// An event payload (as the webhook channel sends it) in words, for people: the one-line
// headline Slack and an email's subject show, and the readable lines an email's body starts with.
//
// Fields read, each at the top level or else in `data`: event, run (or run_id), workflow, path,
// at, status, message, error, item, index, outputs, stalls, after_s, instance, reason, failed,
// total, link; a digest is a payload with an `events` array (each an event payload, or a string
// naming one) and an optional `count`. A run's end (succeeded, failed, partial, cancelled) shows
// its error rather than its message, which only repeats the subject.
#include <string>
#include <vector>

#include "engine/io/json.h"

namespace flowrun {

// E.g. "video_batch run r-123 partial: 1 of 3 items failed", "video_batch run r-123: item
// videos[2] failed: exit 1", "video_batch run r-123: 3 items failed: videos[0], videos[1], videos[2]".
// One line (control characters become spaces), at most `max` bytes.
std::string event_headline(const Json& payload, size_t max = 400);

// "Run: r-123", "Workflow: video_batch", "Event: item_failed", "Step: videos[2]", "Error: ...",
// "Outputs: {...}", "Live view: URL": the fields the payload has, each line bounded.
std::vector<std::string> event_lines(const Json& payload);

// The payload's event, or for a digest the kind all its events share ("" when they differ).
std::string event_kind(const Json& payload);

// The live view's address the payload carries ("link", "view_url" or "live_url"), or "".
std::string event_link(const Json& payload);

}  // namespace flowrun
