#pragma once
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace flowrun {

using Duration = std::chrono::milliseconds;

// The longest duration a workflow may give (100 years of 365.25 days): anything longer is a
// typo, and far longer ones would overflow the milliseconds count.
constexpr Duration kMaxDuration{36'525LL * 86'400'000LL};

// Parses "250ms", "30s", "5m", "2h", "1h30m", "1.5s", "2d". Returns nullopt for anything else,
// including a bare number (a unit is always required so "60" is never misread) and a total
// over kMaxDuration.
std::optional<Duration> parse_duration(std::string_view text);

// Formats for people: "250ms", "5s", "1m30s", "2h". Total: any value, negative and extreme
// ones included, gives a string.
std::string format_duration(Duration d);

}  // namespace flowrun
