#pragma once
// The instance providers, as a table of {name, params, factory}. To add one: a folder
// providers/NAME/ whose .cc defines `ProviderEntry NAME_provider()`, and one line in
// registry.cc's FLOWRUN_PROVIDERS list.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/io/json.h"
#include "engine/step_api/step_type.h"
#include "steps/instance/providers/instance_provider.h"

namespace flowrun {

struct ProviderEntry {
  std::string name;
  std::string summary;            // a phrase for the `provider` parameter's description
  std::vector<ParamSpec> params;  // the parameters this provider reads, besides `provider`
  // Makes the provider one step execution speaks to, from that step's parameters. Throws
  // StepError::permanent for a missing or bad parameter (a key, a URL).
  std::unique_ptr<InstanceProvider> (*make)(StepContext& ctx) = nullptr;
};

// Every provider, the default (`local`) first.
const std::vector<ProviderEntry>& provider_registry();

// The provider called `name`, or nullptr.
const ProviderEntry* find_provider(const std::string& name);

// The provider a step names: with.provider, else with.instance.provider, else the default.
// Throws StepError::permanent for an unknown provider, or what the provider's factory throws.
std::unique_ptr<InstanceProvider> provider_for(StepContext& ctx);

// The parameters every instance step accepts: `provider` and every provider's own.
std::vector<ParamSpec> provider_param_specs();

// Load-time checks of a step's literal parameters: a provider that does not exist, and a
// parameter only other providers read (api_key on local). Expressions are left alone.
void validate_provider_params(const Json& with, std::vector<std::pair<std::string, std::string>>& problems);

}  // namespace flowrun
