#pragma once
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace flowrun {

using Duration = std::chrono::milliseconds;

// Parses "250ms", "30s", "5m", "2h", "1h30m", "1.5s". Returns nullopt for anything else,
// including a bare number: a unit is always required so "60" is never misread.
std::optional<Duration> parse_duration(std::string_view text);

// Formats for people: "250ms", "5s", "1m30s", "2h".
std::string format_duration(Duration d);

}  // namespace flowrun
