// What stall-check reports, in virtual time: stalled when on_stall is about to run, recovered
// once the pipeline moves again (with how long that took), restart_loop when it gives up.
#include <catch2/catch.hpp>

#include "support/fake_recorder.h"
#include "support/harness.h"
#include "support/sim_server.h"

using namespace flowrun;
using flowrun::test::FakeRecorder;
using flowrun::test::Harness;
using flowrun::test::LambdaStep;
using flowrun::test::TempDir;

namespace {

// A probe answering the observations in turn (the last one repeats).
std::string probe_script(const TempDir& dir, const std::vector<std::string>& observations) {
  std::string lines;
  for (const auto& o : observations) lines += o + "\n";
  dir.write("obs.jsonl", lines);
  return "n=$(cat n 2>/dev/null || echo 0); n=$((n+1)); echo $n > n; total=$(wc -l < obs.jsonl); "
         "[ $n -gt $total ] && n=$total; sed -n \"${n}p\" obs.jsonl";
}

const char* const kStalled = R"({"processing": 0, "pending": 5})";
const char* const kMoving = R"({"processing": 2, "pending": 5})";
const char* const kDone = R"({"processing": 0, "pending": 0})";

const char* const kWorkflow = R"Y(inputs: {dir: "", script: ""}
steps:
  - id: watch
    type: stall-check
    timeout: 1h
    with:
      probe: {exec: {argv: [sh, -c, "${{ inputs.script }}"], cwd: "${{ inputs.dir }}"}}
      stalled: processing == 0 and pending > 0
      done: pending == 0 and processing == 0
      threshold: 2
      interval: 1m
      max_recoveries: {count: 2, per: 1h}
    on_stall:
      - {id: act, type: record}
)Y";

}  // namespace

TEST_CASE("stall-check signals: stalled at the threshold, recovered with its time, then done",
          "[steps][stall][signals]") {
  TempDir dir;
  Harness h;
  int acts = 0;
  h.registry.add(std::make_unique<LambdaStep>("record", [&](StepContext&) {
    ++acts;
    return Json::object();
  }));
  REQUIRE(h.load(kWorkflow) == "");
  FakeRecorder rec;
  ExecutorOptions options;
  options.recorder = &rec;
  // Checks 1-2 stalled (on_stall at check 2), 3 stalled, 4 moving: recovered 2 minutes after.
  RunResult r = h.run(
      {{"dir", dir.path()}, {"script", probe_script(dir, {kStalled, kStalled, kStalled, kMoving, kDone})}}, options);
  REQUIRE(r.status == RunState::kSucceeded);
  CHECK(acts == 1);
  const auto stalled = rec.events("stalled");
  REQUIRE(stalled.size() == 1);
  CHECK(stalled[0].path == "watch");
  CHECK(stalled[0].data["stalls"] == 2);
  CHECK(stalled[0].data["recovery"] == 1);
  const auto recovered = rec.events("recovered");
  REQUIRE(recovered.size() == 1);
  CHECK(recovered[0].data["after_s"] == 120.0);
  CHECK(recovered[0].message == "moving again 2m after the stall");
  CHECK(rec.events("restart_loop").empty());
}

TEST_CASE("stall-check signals: restart_loop when stalled again after max_recoveries", "[steps][stall][signals]") {
  TempDir dir;
  Harness h;
  h.registry.add(std::make_unique<LambdaStep>("record", [&](StepContext&) { return Json::object(); }));
  REQUIRE(h.load(kWorkflow) == "");
  FakeRecorder rec;
  ExecutorOptions options;
  options.recorder = &rec;
  RunResult r = h.run({{"dir", dir.path()}, {"script", probe_script(dir, {kStalled})}}, options);
  REQUIRE(r.status == RunState::kFailed);
  CHECK(rec.events("stalled").size() == 2);
  const auto loop = rec.events("restart_loop");
  REQUIRE(loop.size() == 1);
  CHECK(loop[0].message.find("restart loop: stalled again after 2 recoveries") == 0);
  CHECK(loop[0].data["recoveries"] == 2);
  CHECK(loop[0].data["max_recoveries"] == 2);
  CHECK(rec.events("recovered").empty());
}
