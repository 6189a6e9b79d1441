#include "engine/io/byte_size.h"

#include <cctype>
#include <cstdint>

namespace flowrun {

std::optional<size_t> parse_byte_size(std::string_view text) {
  size_t i = 0;
  uint64_t number = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    if (number > (uint64_t{1} << 40)) return std::nullopt;
    number = number * 10 + static_cast<uint64_t>(text[i++] - '0');
  }
  if (i == 0) return std::nullopt;
  while (i < text.size() && text[i] == ' ') ++i;
  std::string unit(text.substr(i));
  for (auto& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  uint64_t scale = 0;
  if (unit.empty() || unit == "b" || unit == "bytes")
    scale = 1;
  else if (unit == "kib")
    scale = uint64_t{1} << 10;
  else if (unit == "mib")
    scale = uint64_t{1} << 20;
  else if (unit == "gib")
    scale = uint64_t{1} << 30;
  else if (unit == "kb")
    scale = 1000;
  else if (unit == "mb")
    scale = 1000 * 1000;
  else if (unit == "gb")
    scale = 1000 * 1000 * 1000;
  else
    return std::nullopt;
  if (number == 0 || number > (uint64_t{1} << 40) / scale) return std::nullopt;
  return static_cast<size_t>(number * scale);
}

std::optional<size_t> byte_size_param(const Json& value) {
  if (value.is_number_integer()) {
    const int64_t n = value.get<int64_t>();
    if (n <= 0 || n > (int64_t{1} << 40)) return std::nullopt;
    return static_cast<size_t>(n);
  }
  if (value.is_string()) return parse_byte_size(std::string_view(value.get_ref<const std::string&>()));
  return std::nullopt;
}

std::string format_bytes(size_t bytes) {
  static const char* const kUnits[] = {"GiB", "MiB", "KiB"};
  for (int i = 0; i < 3; ++i) {
    const size_t unit = size_t{1} << (10 * (3 - i));
    if (bytes >= unit && bytes % unit == 0) return std::to_string(bytes / unit) + " " + kUnits[i];
  }
  return std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes");
}

}  // namespace flowrun
