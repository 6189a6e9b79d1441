#include "engine/io/param_type.h"

#include <array>
#include <utility>

#include "engine/io/duration.h"

namespace flowrun {
namespace {

constexpr std::array<std::pair<ParamType, std::string_view>, 9> kNames = {{
    {ParamType::kString, "string"},
    {ParamType::kNumber, "number"},
    {ParamType::kInteger, "integer"},
    {ParamType::kBool, "bool"},
    {ParamType::kDuration, "duration"},
    {ParamType::kList, "list"},
    {ParamType::kMap, "map"},
    {ParamType::kStringOrList, "string|list"},
    {ParamType::kAny, "any"},
}};

}  // namespace

std::string to_string(ParamType type) {
  for (const auto& [t, name] : kNames)
    if (t == type) return std::string(name);
  return "any";
}

std::optional<ParamType> parse_param_type(std::string_view name) {
  for (const auto& [t, n] : kNames)
    if (n == name) return t;
  return std::nullopt;
}

const std::vector<std::string>& param_type_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& entry : kNames) out.emplace_back(entry.second);
    return out;
  }();
  return names;
}

bool value_has_type(const Json& value, ParamType type) {
  switch (type) {
    case ParamType::kString:
      return value.is_primitive() && !value.is_null();
    case ParamType::kNumber:
      return value.is_number();
    case ParamType::kInteger:
      return value.is_number_integer();
    case ParamType::kBool:
      return value.is_boolean();
    case ParamType::kDuration:
      return value.is_string() && parse_duration(value.get<std::string>()).has_value();
    case ParamType::kList:
      return value.is_array();
    case ParamType::kMap:
      return value.is_object();
    case ParamType::kStringOrList:
      return value.is_array() || value.is_string();
    case ParamType::kAny:
      return true;
  }
  return true;
}

}  // namespace flowrun
