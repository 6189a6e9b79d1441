#include "engine/inputs.h"

#include <unistd.h>

#include "engine/expression.h"
#include "engine/json_parse.h"

extern char** environ;

namespace flowrun {
namespace {

Json coerce(const std::string& text, const Json& like) {
  if (like.is_boolean()) {
    if (text == "true" || text == "1" || text == "yes") return true;
    if (text == "false" || text == "0" || text == "no") return false;
    return text;
  }
  if (like.is_number_integer()) {
    try {
      size_t used = 0;
      long long v = std::stoll(text, &used);
      if (used == text.size()) return v;
    } catch (...) {
    }
    return text;
  }
  if (like.is_number()) {
    try {
      size_t used = 0;
      double v = std::stod(text, &used);
      if (used == text.size()) return v;
    } catch (...) {
    }
    return text;
  }
  if (like.is_array() || like.is_object()) {
    Json parsed = parse_json_limited(text);
    if (!parsed.is_discarded()) return parsed;
  }
  return text;
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
                    Diagnostics& diagnostics) {
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
      inputs[in.name] = coerce(it->second, in.default_value.value_or(Json()));
    } else if (in.default_value && !in.default_value->is_null()) {
      try {
        inputs[in.name] = evaluator.resolve(*in.default_value);
      } catch (const ExpressionError& e) {
        diagnostics.error(in.loc, "default of input '" + in.name + "': " + e.what());
      }
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
