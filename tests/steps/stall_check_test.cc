// stall-check in virtual time: on_stall runs exactly at the threshold, the counter resets, and
// max_recoveries {count, per} is a sliding window.
#include <catch2/catch.hpp>

#include "support/harness.h"
#include "support/sim_server.h"

using namespace flowrun;
using flowrun::test::Harness;
using flowrun::test::LambdaStep;
using flowrun::test::TempDir;
using namespace std::chrono_literals;

namespace {

// A probe that answers the observations listed in OBS.jsonl in turn (the last one repeats).
std::string counting_probe(const TempDir& dir, const std::vector<std::string>& observations) {
  std::string lines;
  for (const auto& o : observations) lines += o + "\n";
  dir.write("obs.jsonl", lines);
  return "n=$(cat n 2>/dev/null || echo 0); n=$((n+1)); echo $n > n; total=$(wc -l < obs.jsonl); "
         "[ $n -gt $total ] && n=$total; sed -n \"${n}p\" obs.jsonl";
}

}  // namespace

TEST_CASE("stall-check: on_stall runs at the threshold-th stalled check, then the count starts again", "[steps][stall]") {
  TempDir dir;
  Harness h;
  std::vector<Json> seen;
  h.registry.add(std::make_unique<LambdaStep>("record", [&](StepContext& ctx) {
    seen.push_back(ctx.with());
    return Json::object();
  }));
  const char* stalled = R"({"processing": 0, "pending": 5, "completed": 10, "total": 20})";
  const char* moving = R"({"processing": 2, "pending": 5, "completed": 12, "total": 20})";
  const char* done = R"({"processing": 0, "pending": 0, "completed": 20, "total": 20})";
  std::string script = counting_probe(dir, {stalled, stalled, moving, stalled, stalled, stalled, stalled, stalled, stalled, done});
  REQUIRE(h.load(R"Y(inputs: {dir: "", script: ""}
steps:
  - id: watch
    type: stall-check
    with:
      probe: {exec: {argv: [sh, -c, "${{ inputs.script }}"], cwd: "${{ inputs.dir }}"}}
      stalled: processing == 0 and pending > 0
      done: pending == 0 and processing == 0 and completed > 0
      threshold: 3
      interval: 1m
    on_stall:
      - {id: act, type: record, with: {pending: "${{ observation.pending }}", n: "${{ recoveries }}"}}
)Y") == "");
  RunResult r = h.run({{"dir", dir.path()}, {"script", script}});
  REQUIRE(r.status == RunState::kSucceeded);
  // Checks 1-2 stalled, 3 moving (reset), 4-6 stalled: act; 7-9 stalled: act; 10 done.
  REQUIRE(seen.size() == 2);
  CHECK(seen[0] == Json({{"pending", 5}, {"n", 1}}));
  CHECK(seen[1]["n"] == 2);
  CHECK(r.steps["watch"]["outputs"]["recoveries"] == 2);
  CHECK(r.steps["watch"]["outputs"]["checks"] == 10);
  CHECK(r.steps["watch"]["outputs"]["completed"] == 20);
  CHECK(h.virtual_clock.sleeps().size() == 9);  // one interval between checks, in virtual time
  CHECK(h.log_contains("Progress: 10/20 (50.0%)"));
}

TEST_CASE("stall-check: max_recoveries is a sliding window over time", "[steps][stall]") {
  TempDir dir;
  auto run = [&](const std::string& per) {
    Harness h;
    int acts = 0;
    h.registry.add(std::make_unique<LambdaStep>("record", [&](StepContext&) {
      ++acts;
      return Json::object();
    }));
    std::string script = counting_probe(dir, {R"({"processing": 0, "pending": 5})"});
    REQUIRE(h.load(R"Y(inputs: {dir: "", script: "", per: ""}
steps:
  - id: watch
    type: stall-check
    timeout: 30m
    with:
      probe: {exec: {argv: [sh, -c, "${{ inputs.script }}"], cwd: "${{ inputs.dir }}"}}
      stalled: processing == 0 and pending > 0
      threshold: 1
      interval: 4m
      max_recoveries: {count: 2, per: "${{ inputs.per }}"}
    on_stall:
      - {id: act, type: record}
)Y") == "");
    RunResult r = h.run({{"dir", dir.path()}, {"script", script}, {"per", per}});
    return std::make_pair(r, acts);
  };
  auto [guarded, acts] = run("10m");  // recoveries at 0m and 4m; at 8m both are within 10m
  CHECK(guarded.status == RunState::kFailed);
  CHECK(acts == 2);
  CHECK(guarded.error.find("stalled again after 2 recoveries within 10m") != std::string::npos);

  auto [loose, loose_acts] = run("5m");  // each recovery leaves the window before the next-but-one
  CHECK(loose.status == RunState::kFailed);
  CHECK(loose.error.find("timed out") != std::string::npos);  // only the step's own timeout ends it
  CHECK(loose_acts >= 7);
}
