#include "steps/instance/providers/registry.h"

#include <algorithm>
#include <set>

#include "engine/io/step_error.h"
#include "engine/step_api/expressions.h"
#include "engine/step_api/step_context.h"

// The providers, one line each, the default first: NAME's folder defines `NAME_provider()`.
#define FLOWRUN_PROVIDERS(X) \
  X(local)                   \
  X(vastai)                  \
  /* a new provider: one line above this one */

namespace flowrun {

#define FLOWRUN_DECLARE_PROVIDER(name) ProviderEntry name##_provider();
FLOWRUN_PROVIDERS(FLOWRUN_DECLARE_PROVIDER)
#undef FLOWRUN_DECLARE_PROVIDER

namespace {

std::string known_names() {
  std::string out;
  for (const auto& p : provider_registry()) out += (out.empty() ? "" : ", ") + p.name;
  return out;
}

}  // namespace

const std::vector<ProviderEntry>& provider_registry() {
#define FLOWRUN_PROVIDER_ROW(name) name##_provider(),
  static const std::vector<ProviderEntry> table = {FLOWRUN_PROVIDERS(FLOWRUN_PROVIDER_ROW)};
#undef FLOWRUN_PROVIDER_ROW
  return table;
}

const ProviderEntry* find_provider(const std::string& name) {
  const auto& table = provider_registry();
  auto it = std::find_if(table.begin(), table.end(), [&](const ProviderEntry& p) { return p.name == name; });
  return it == table.end() ? nullptr : &*it;
}

std::unique_ptr<InstanceProvider> provider_for(StepContext& ctx) {
  // An instance object (provision's output) knows its provider; an explicit parameter wins.
  std::string name = provider_registry().front().name;
  const Json& instance = ctx.with().contains("instance") ? ctx.with()["instance"] : Json();
  if (instance.is_object() && instance.value("provider", Json()).is_string()) name = instance["provider"];
  name = ctx.string_param("provider", name);
  const ProviderEntry* entry = find_provider(name);
  if (!entry) throw StepError::permanent("unknown provider '" + name + "' (known: " + known_names() + ")");
  return entry->make(ctx);
}

std::vector<ParamSpec> provider_param_specs() {
  const auto& table = provider_registry();
  std::string choices = table.front().name + " (default: " + table.front().summary + ")";
  for (size_t i = 1; i < table.size(); ++i) choices += (i + 1 == table.size() ? " or " : ", ") + table[i].name;
  std::vector<ParamSpec> specs = {{"provider", ParamType::kString, false, choices}};
  // A parameter two providers read (an API key) is listed once, as the first declares it.
  for (const auto& p : table)
    for (const auto& param : p.params)
      if (std::none_of(specs.begin(), specs.end(), [&](const ParamSpec& s) { return s.name == param.name; }))
        specs.push_back(param);
  return specs;
}

void validate_provider_params(const Json& with, std::vector<std::pair<std::string, std::string>>& problems) {
  if (!with.is_object()) return;
  const Json provider = with.value("provider", Json());
  // Without `provider`, an `instance` names it at run time; without either it is the default.
  if (provider.is_null() && with.contains("instance")) return;
  if (!provider.is_null() && (!provider.is_string() || holds_expression(provider))) return;
  const std::string name = provider.is_null() ? provider_registry().front().name : provider.get<std::string>();
  const ProviderEntry* entry = find_provider(name);
  if (!entry) {
    problems.emplace_back("provider", "unknown provider '" + name + "' (known: " + known_names() + ")");
    return;
  }
  std::set<std::string> reported;
  for (const auto& other : provider_registry())
    for (const auto& param : other.params) {
      bool own = std::any_of(entry->params.begin(), entry->params.end(),
                             [&](const ParamSpec& s) { return s.name == param.name; });
      if (!own && with.contains(param.name) && reported.insert(param.name).second)
        problems.emplace_back(param.name,
                              "parameter '" + param.name + "' is read by provider " + other.name + ", not by " + name);
    }
}

}  // namespace flowrun
