#include "engine/load/inputs.h"

#include <unistd.h>

#include <cmath>
#include <optional>

#include "engine/io/json_parse.h"
#include "engine/sandbox/expression.h"

extern char** environ;

namespace flowrun {
namespace {

// The input's type: declared with `type:`, else the type of its default (a string when there
// is none, or when the default is an expression).
ParamType input_type(const InputSpec& in) {
  if (in.type) return *in.type;
  if (!in.default_value) return ParamType::kString;
  const Json& d = *in.default_value;
  if (d.is_boolean()) return ParamType::kBool;
  if (d.is_number_integer()) return ParamType::kInteger;
  if (d.is_number()) return ParamType::kNumber;
  if (d.is_array()) return ParamType::kList;
  if (d.is_object()) return ParamType::kMap;
  return ParamType::kString;
}

// `text` as a value of `type`, or nullopt when it is not one.
std::optional<Json> coerce(const std::string& text, ParamType type) {
  switch (type) {
    case ParamType::kBool:
      if (text == "true" || text == "1" || text == "yes") return true;
      if (text == "false" || text == "0" || text == "no") return false;
      return std::nullopt;
    case ParamType::kInteger:
    case ParamType::kNumber: {
      // strtod/stoll accept "nan", "inf" and leading blanks: a finite number written plainly only.
      if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return std::nullopt;
      try {
        size_t used = 0;
        if (type == ParamType::kInteger) {
          long long v = std::stoll(text, &used);
          if (used == text.size()) return v;
          return std::nullopt;
        }
        double v = std::stod(text, &used);
        if (used == text.size() && std::isfinite(v)) return v;
      } catch (...) {
      }
      return std::nullopt;
    }
    case ParamType::kList:
    case ParamType::kMap: {
      Json parsed;
      try {
        parsed = parse_json_limited(text);
      } catch (const std::exception&) {
        return std::nullopt;  // nested too deep
      }
      if (parsed.is_discarded() || !value_has_type(parsed, type)) return std::nullopt;
      return parsed;
    }
    case ParamType::kDuration:
      if (!parse_duration(text)) return std::nullopt;
      return text;
    case ParamType::kString:
    case ParamType::kStringOrList:
    case ParamType::kAny:
      return text;
  }
  return text;
}

std::string type_example(ParamType type) {
  switch (type) {
    case ParamType::kBool:
      return "true or false";
    case ParamType::kInteger:
      return "a whole number such as 5";
    case ParamType::kNumber:
      return "a number such as 0.5";
    case ParamType::kList:
      return "a JSON list such as [\"a\", \"b\"]";
    case ParamType::kMap:
      return "a JSON object such as {\"k\": 1}";
    case ParamType::kDuration:
      return "a duration such as 30s, 5m or 1h30m";
    default:
      return "text";
  }
}

}  // namespace

Json environment_json() {
  Json env = Json::object();
  for (char** e = environ; e && *e; ++e) {
    std::string entry(*e);
    auto eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  return env;
}

Json resolve_inputs(const Workflow& workflow, const std::map<std::string, std::string>& overrides,
                    Diagnostics& diagnostics, MissingRequired missing) {
  Json inputs = Json::object();
  for (const auto& override_entry : overrides) {
    const std::string& name = override_entry.first;
    bool known = std::any_of(workflow.inputs.begin(), workflow.inputs.end(),
                             [&](const InputSpec& in) { return in.name == name; });
    if (!known) {
      std::vector<std::string> names;
      for (const auto& in : workflow.inputs) names.push_back(in.name);
      std::string guess = closest_match(name, names);
      diagnostics.error({workflow.path, 0, 0}, "--set " + name + ": the workflow has no input '" + name + "'",
                        guess.empty() ? "declare it under `inputs:`" : "did you mean '" + guess + "'?");
    }
  }
  ExpressionEvaluator evaluator(Json{{"env", environment_json()}});
  for (const auto& in : workflow.inputs) {
    auto it = overrides.find(in.name);
    if (it != overrides.end()) {
      const ParamType type = input_type(in);
      if (auto value = coerce(it->second, type)) {
        inputs[in.name] = *value;
      } else {
        diagnostics.error(
            in.loc, "--set " + in.name + "=" + it->second + ": input '" + in.name + "' takes " + type_example(type),
            !in.type ? "its type comes from its default; declare `type:` to change it" : "");
      }
    } else if (in.default_value && !in.default_value->is_null()) {
      try {
        inputs[in.name] = evaluator.resolve(*in.default_value);
      } catch (const ExpressionError& e) {
        diagnostics.error(in.loc, "default of input '" + in.name + "': " + e.what());
      }
    } else if (in.required && missing == MissingRequired::kPlaceholder) {
      inputs[in.name] = "<" + in.name + ">";
    } else if (in.required) {
      diagnostics.error(in.loc, "required input '" + in.name + "' has no value",
                        "pass it with --set " + in.name + "=VALUE");
    } else {
      inputs[in.name] = nullptr;
    }
  }
  return inputs;
}

}  // namespace flowrun
