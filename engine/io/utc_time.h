#pragma once
#include <cstdint>
#include <string>

namespace flowrun {

// RFC 3339 UTC with milliseconds ("2026-05-01T12:00:00.250Z") of wall-clock milliseconds since
// the epoch: the JSON log's time, a notification's `at`, the outbox listing.
std::string rfc3339_ms(int64_t ms);

}  // namespace flowrun
