#include "engine/io/duration.h"

#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace flowrun {

std::optional<Duration> parse_duration(std::string_view text) {
  size_t i = 0;
  double total_ms = 0;
  bool any = false;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    if (i == start) return std::nullopt;
    std::string number(text.substr(start, i - start));
    char* end = nullptr;
    double value = std::strtod(number.c_str(), &end);
    if (end != number.c_str() + number.size()) return std::nullopt;
    size_t unit_start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string_view unit = text.substr(unit_start, i - unit_start);
    double scale;
    if (unit == "ms")
      scale = 1;
    else if (unit == "s")
      scale = 1000;
    else if (unit == "m")
      scale = 60'000;
    else if (unit == "h")
      scale = 3'600'000;
    else if (unit == "d")
      scale = 86'400'000;
    else
      return std::nullopt;
    total_ms += value * scale;
    // Checked per part, before llround, which is undefined past the range of long long.
    if (!(total_ms <= static_cast<double>(kMaxDuration.count()))) return std::nullopt;
    any = true;
  }
  if (!any) return std::nullopt;
  return Duration(static_cast<Duration::rep>(std::llround(total_ms)));
}

std::string format_duration(Duration d) {
  const auto count = d.count();
  // The magnitude as unsigned, so the most negative count has one too.
  const uint64_t ms = count < 0 ? 0 - static_cast<uint64_t>(count) : static_cast<uint64_t>(count);
  std::string out = count < 0 ? "-" : "";
  if (ms < 1000) return out + std::to_string(ms) + "ms";
  if (ms < 60'000) {
    if (ms % 1000 == 0) return out + std::to_string(ms / 1000) + "s";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
    return out + buf;
  }
  const uint64_t total_s = ms / 1000;
  const uint64_t h = total_s / 3600, m = (total_s % 3600) / 60, s = total_s % 60;
  if (h) out += std::to_string(h) + "h";
  if (m) out += std::to_string(m) + "m";
  if (s) out += std::to_string(s) + "s";
  return out;
}

}  // namespace flowrun
