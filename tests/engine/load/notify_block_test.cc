// The loader's `notify:` block: the model it builds and a diagnostic with line:col for each mistake.
#include <catch2/catch.hpp>

#include "engine/load/loader.h"
#include "steps/catalog.h"
#include "support/harness.h"

using namespace flowrun;
using flowrun::test::diagnostics_of;

namespace {

const char* const kSteps = "steps:\n  - {id: a, type: log, with: {message: x}}\n";

}  // namespace

TEST_CASE("a notify block loads channels, routes, rate limits, digest and grace", "[loader][notify]") {
  StepRegistry registry;
  register_builtin_steps(registry);
  LoadResult r = load_workflow_text(std::string(R"(inputs:
  hook: {default: ""}
notify:
  channels:
    team: {type: webhook, url: "${{ inputs.hook }}"}
  on:
    - events: [failed, item_failed]
      to: [team]
    - events: [stalled]
      to: [team]
      at_most: {count: 2, per: 10m}
  digest: 1m
  grace: 5s
)") + kSteps,
                                    "w.yaml", registry, ".");
  REQUIRE(r.diagnostics.empty());
  const NotifySpec& n = *r.workflow->notify;
  REQUIRE(n.channels.size() == 1);
  CHECK(n.channels[0].name == "team");
  CHECK(n.channels[0].type == "webhook");
  CHECK(n.channels[0].settings == Json{{"url", "${{ inputs.hook }}"}});
  REQUIRE(n.routes.size() == 2);
  CHECK(n.routes[0].events == std::vector<std::string>{"failed", "item_failed"});
  CHECK(!n.routes[0].at_most);
  CHECK(n.routes[1].at_most->count == 2);
  CHECK(n.routes[1].at_most->per == std::chrono::minutes(10));
  CHECK(n.digest == std::chrono::minutes(1));
  CHECK(n.grace == std::chrono::seconds(5));
}

TEST_CASE("notify mistakes are diagnostics with line and column", "[loader][notify]") {
  auto d = diagnostics_of(std::string(R"(notify:
  channels:
    team: {type: webhok, url: "https://x.example/h"}
    ops: {type: webhook, url: "ftp://x.example/h", mode: loud}
  on:
    - events: [failed, itme_failed]
      to: [team, teem]
      at_most: {count: 0, per: soon}
  digest: later
  grace: 1h
)") + kSteps);
  REQUIRE(d.size() == 9);
  CHECK(d[0] == "3:18: unknown channel type 'webhok' | did you mean 'webhook'?");
  CHECK(d[1] == "4:10: channel 'ops' (webhook): unknown setting 'mode' (a webhook has `url`)");
  CHECK(d[2] == "4:10: channel 'ops' (webhook): `url` must start with http:// or https://");
  CHECK(d[3] == "6:24: unknown event 'itme_failed' | did you mean 'item_failed'?");
  CHECK(d[4] == "7:18: notify.on names unknown channel 'teem' | did you mean 'team'?");
  CHECK(d[5] == "8:24: at_most.count must be a whole number from 1, got '0'");
  CHECK(d[6] == "8:32: bad duration 'soon' for at_most.per | use a number with a unit: 250ms, 30s, 5m, 2h or 1h30m");
  CHECK(d[7].rfind("9:11: bad duration 'later' for notify.digest", 0) == 0);
  CHECK(d[8] ==
        "10:10: notify.grace must be between 0s and 10m | it is how long the process waits at its end to deliver what "
        "is due");
}

TEST_CASE("a notify channel reading an undeclared input is an error", "[loader][notify]") {
  auto d = diagnostics_of(std::string("notify:\n  channels:\n    team: {type: webhook, url: \"${{ inputs.hok }}\"}\n") +
                          kSteps);
  REQUIRE(d.size() == 1);
  CHECK(d[0] == "3:32: expression refers to undeclared input 'hok' | declare it under `inputs:`");
}
