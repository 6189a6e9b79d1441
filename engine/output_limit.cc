#include "engine/output_limit.h"

#include <cctype>
#include <cstdint>

#include "engine/step_error.h"

namespace flowrun {
namespace {

// Adds the size of `value` to `total`, stopping once past `limit`; an explicit stack, not
// recursion, so any depth is fine.
size_t measure(const Json& root, size_t limit) {
  size_t total = 0;
  std::vector<const Json*> todo{&root};
  while (!todo.empty() && total <= limit) {
    const Json* v = todo.back();
    todo.pop_back();
    switch (v->type()) {
      case Json::value_t::string: total += v->get_ref<const std::string&>().size() + 3; break;
      case Json::value_t::array:
        total += 2 + v->size();
        for (const auto& item : *v) todo.push_back(&item);
        break;
      case Json::value_t::object:
        total += 2 + v->size();
        for (const auto& [k, item] : v->items()) {
          total += k.size() + 3;
          todo.push_back(&item);
        }
        break;
      default: total += 8; break;
    }
  }
  return total;
}

}  // namespace

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
  if (unit.empty() || unit == "b" || unit == "bytes") scale = 1;
  else if (unit == "kib") scale = uint64_t{1} << 10;
  else if (unit == "mib") scale = uint64_t{1} << 20;
  else if (unit == "gib") scale = uint64_t{1} << 30;
  else if (unit == "kb") scale = 1000;
  else if (unit == "mb") scale = 1000 * 1000;
  else if (unit == "gb") scale = 1000 * 1000 * 1000;
  else return std::nullopt;
  if (number == 0 || number > (uint64_t{1} << 40) / scale) return std::nullopt;
  return static_cast<size_t>(number * scale);
}

std::string format_bytes(size_t bytes) {
  static const char* const kUnits[] = {"GiB", "MiB", "KiB"};
  for (int i = 0; i < 3; ++i) {
    const size_t unit = size_t{1} << (10 * (3 - i));
    if (bytes >= unit && bytes % unit == 0) return std::to_string(bytes / unit) + " " + kUnits[i];
  }
  return std::to_string(bytes) + " bytes";
}

size_t json_size_within(const Json& value, size_t limit) { return measure(value, limit); }

void check_output_size(Json& outputs, size_t limit) {
  if (json_size_within(outputs, limit) <= limit) return;
  outputs = Json::object();
  throw StepError::permanent("outputs are larger than max_output (" + format_bytes(limit) +
                               "): return less, or raise `max_output:` on the step");
}

}  // namespace flowrun
