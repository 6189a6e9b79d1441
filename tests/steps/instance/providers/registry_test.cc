// The provider registry: one table drives provider_for, the `provider` parameter's description,
// the parameters instance steps accept and their load-time checks.
#include "steps/instance/providers/registry.h"

#include <catch2/catch.hpp>

#include "support/harness.h"

using namespace flowrun;
using flowrun::test::diagnostics_of;
using flowrun::test::Harness;

TEST_CASE("provider registry: local is the default, each provider declares its own parameters", "[steps][providers]") {
  const auto& table = provider_registry();
  REQUIRE(table.size() == 2);
  CHECK(table[0].name == "local");
  REQUIRE(table[0].params.size() == 1);
  CHECK(table[0].params[0].name == "price_per_hour");  // simulated, so cost shows in demos and tests
  REQUIRE(find_provider("vastai"));
  CHECK(find_provider("vastai")->params.size() == 3);
  CHECK(find_provider("nope") == nullptr);
  std::vector<std::string> names;
  for (const auto& p : provider_param_specs()) names.push_back(p.name);
  CHECK(names == std::vector<std::string>{"provider", "price_per_hour", "api_key", "api_url", "request_timeout"});
  CHECK(provider_param_specs()[0].description == "local (default: a local process) or vastai");
  CHECK(provider_param_specs()[4].type == ParamType::kDuration);
}

TEST_CASE("provider registry: an unknown provider and another provider's parameter fail validate",
          "[steps][providers]") {
  auto d = diagnostics_of(R"(steps:
  - id: gpu
    type: provision
    with: {provider: nope, start_command: "true"}
  - id: here
    type: provision
    with: {provider: local, api_key: k, start_command: "true"}
  - id: gone
    type: destroy
    with: {api_url: "http://x", label: l}
)");
  REQUIRE(d.size() == 3);
  CHECK(d[0] == "4:22: unknown provider 'nope' (known: local, vastai)");
  CHECK(d[1] == "7:38: parameter 'api_key' is read by provider vastai, not by local");
  CHECK(d[2] == "10:21: parameter 'api_url' is read by provider vastai, not by local");
}

TEST_CASE("provider registry: a provider named by an expression or an instance is checked at run time",
          "[steps][providers]") {
  CHECK(diagnostics_of(R"(inputs: {p: nope}
steps:
  - id: gone
    type: destroy
    with: {provider: "${{ inputs.p }}", api_key: k, instance: "1"}
  - id: also
    type: destroy
    with: {instance: {provider: vastai, id: "2"}, api_key: k}
)")
            .empty());
  Harness h;
  REQUIRE(h.load(R"(inputs: {p: nope}
steps:
  - id: gone
    type: destroy
    with: {provider: "${{ inputs.p }}", instance: "1"}
)") == "");
  RunResult r = h.run();
  REQUIRE(r.status == RunState::kFailed);
  CHECK(r.steps["gone"]["error"] == "unknown provider 'nope' (known: local, vastai) (permanent)");
}
