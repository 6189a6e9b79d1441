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

// A probe that answers the observations listed in OBS.jsonl in turn (the last one repeats); a
// line FAIL is a probe that fails (the status endpoint is down).
std::string counting_probe(const TempDir& dir, const std::vector<std::string>& observations) {
  std::string lines;
  for (const auto& o : observations) lines += o + "\n";
  dir.write("obs.jsonl", lines);
  return "n=$(cat n 2>/dev/null || echo 0); n=$((n+1)); echo $n > n; total=$(wc -l < obs.jsonl); "
         "[ $n -gt $total ] && n=$total; line=$(sed -n \"${n}p\" obs.jsonl); "
         "[ \"$line\" = FAIL ] && { echo 'connection refused' >&2; exit 1; }; echo \"$line\"";
}

}  // namespace

TEST_CASE("stall-check: on_stall runs at the threshold-th stalled check, then the count starts again",
          "[steps][stall]") {
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
  std::string script =
      counting_probe(dir, {stalled, stalled, moving, stalled, stalled, stalled, stalled, stalled, stalled, done});
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

namespace {

const char* kStalled = R"({"processing": 0, "pending": 5, "completed": 10, "total": 20})";
const char* kMoving = R"({"processing": 2, "pending": 5, "completed": 12, "total": 20})";
const char* kDone = R"({"processing": 0, "pending": 0, "completed": 20, "total": 20})";

struct Supervised {
  Harness h;
  int restarts = 0, requeues = 0;
  RunResult result;

  Supervised(const TempDir& dir, const std::vector<std::string>& observations, const std::string& health_check,
             const std::string& extra = "") {
    h.registry.add(std::make_unique<LambdaStep>("restart", [this](StepContext&) {
      ++restarts;
      return Json::object();
    }));
    h.registry.add(std::make_unique<LambdaStep>("requeue", [this](StepContext&) {
      ++requeues;
      return Json::object();
    }));
    std::string script = counting_probe(dir, observations);
    std::string yaml = R"Y(inputs: {dir: "", script: ""}
steps:
  - id: watch
    type: stall-check
    with:
      probe: {exec: {argv: [sh, -c, "${{ inputs.script }}"], cwd: "${{ inputs.dir }}"}}
      stalled: processing == 0 and pending > 0
      done: pending == 0 and processing == 0 and completed > 0
      threshold: 2
      interval: 1m
)Y" + extra + health_check +
                       R"Y(
    on_stall:
      - {id: restart, type: restart}
    on_healthy:
      - {id: requeue, type: requeue}
)Y";
    REQUIRE(h.load(yaml) == "");
    result = h.run({{"dir", dir.path()}, {"script", script}});
  }
};

}  // namespace

TEST_CASE("stall-check: a health check that always fails counts toward max_recoveries and skips on_healthy",
          "[steps][stall]") {
  TempDir dir;
  Supervised s(dir, {kStalled}, "      health_check: {command: [sh, -c, 'echo no GPU >&2; exit 9'], timeout: 10s}",
               "      max_recoveries: {count: 2, per: 1h}\n");
  CHECK(s.result.status == RunState::kFailed);
  CHECK(s.restarts == 2);
  CHECK(s.requeues == 0);
  CHECK(s.result.error.find("restart loop: not healthy after 2 recoveries within 1h (max_recoveries 2): health check "
                            "failed: sh -c echo no GPU >&2; exit 9 exited with 9: no GPU") != std::string::npos);
  // The first failure is reported and the watch goes on; the second ends it.
  CHECK(
      s.h.log_contains("health check failed after recovery 1: sh -c echo no GPU >&2; exit 9 exited with 9: no GPU; "
                       "on_healthy skipped this time "
                       "(1 of max_recoveries 2 within 1h)"));
  CHECK(
      s.h.log_contains("supervision: 2 stalls detected, 2 recoveries (on_stall runs), 2 failed health checks, "
                       "recovery time none (the last stall is not over)"));
}

TEST_CASE("stall-check: a health check over the probe waits out its grace, then on_healthy runs, recovery times",
          "[steps][stall]") {
  TempDir dir;
  // Checks 1-2 stalled: recovery at 1m. The health probe reads 3 (stalled) and, 30s later, 4
  // (moving): healthy, and moving again 30s after the detection. 5 moving, 6-7 stalled: a second
  // recovery at 4m30s, healthy at once (8 moving); 9 done.
  Supervised s(dir, {kStalled, kStalled, kStalled, kMoving, kMoving, kStalled, kStalled, kMoving, kDone},
               "      health_check: {until: processing > 0, grace: 2m, interval: 30s}");
  REQUIRE(s.result.status == RunState::kSucceeded);
  CHECK(s.restarts == 2);
  CHECK(s.requeues == 2);
  const Json out = s.result.steps["watch"]["outputs"];
  CHECK(out["stalls_detected"] == 2);
  CHECK(out["recoveries"] == 2);
  CHECK(out["failed_health_checks"] == 0);
  CHECK(out["recovery_s"] == Json({{"count", 2}, {"min", 0.0}, {"median", 15.0}, {"max", 30.0}}));
  CHECK(out["recovery"] == "min 0ms, median 15s, max 30s");
  CHECK(s.h.log_contains("healthy after recovery 1: `processing > 0` after 30s"));
}

TEST_CASE("stall-check: a health check that does not hold within its grace fails that recovery, the next one can pass",
          "[steps][stall]") {
  TempDir dir;
  // Recovery 1 at 1m: the health probe reads 3, 4, 5 (stalled at 0s, 1m, 2m of a 2m grace):
  // not healthy, no requeue. Checks 6-7 stalled: recovery 2, the health probe reads 8: healthy.
  Supervised s(dir, {kStalled, kStalled, kStalled, kStalled, kStalled, kStalled, kStalled, kMoving, kMoving, kDone},
               "      health_check: {until: processing > 0, grace: 2m, interval: 1m}",
               "      max_recoveries: {count: 3, per: 1h}\n");
  REQUIRE(s.result.status == RunState::kSucceeded);
  CHECK(s.restarts == 2);
  CHECK(s.requeues == 1);
  const Json out = s.result.steps["watch"]["outputs"];
  CHECK(out["failed_health_checks"] == 1);
  CHECK(out["stalls_detected"] == 2);
  // One stall, from its detection at 1m until the health probe saw it moving at 5m.
  CHECK(out["recovery_s"]["count"] == 1);
  CHECK(out["recovery_s"]["max"] == 240.0);
  CHECK(s.h.log_contains("health check failed after recovery 1: `processing > 0` did not hold within 2m (last: "));
}

TEST_CASE("stall-check: a status probe that is down is reported per backoff step and never counted as a stall",
          "[steps][stall]") {
  TempDir dir;
  // Threshold 2: stalled, (down x3), stalled, moving, done. Without the outage between them
  // the two stalled checks would be "in a row" and restart the worker.
  Supervised s(dir, {kStalled, "FAIL", "FAIL", "FAIL", kStalled, kMoving, kDone}, "");
  REQUIRE(s.result.status == RunState::kSucceeded);
  CHECK(s.restarts == 0);
  const Json out = s.result.steps["watch"]["outputs"];
  CHECK(out["stalls_detected"] == 0);
  CHECK(out["failed_probes"] == 3);
  CHECK(out["outages"] == 1);
  // Failures at 1m, 2m (after 1m) and 4m (after 2m); it answers at 8m (after 4m).
  CHECK(s.h.log_contains("status probe down, 1 failed probe (probe sh exited with 1: connection refused"));
  CHECK(s.h.log_contains("status probe down for 3m, 3 failed probes ("));
  CHECK(s.h.log_contains("not restarting: a restart does not fix an API or broker outage; next check in 4m"));
  CHECK(s.h.log_contains("status probe back after 7m (3 failed probes)"));
  CHECK(out["longest_outage_s"] == 420.0);
  int down_lines = 0;
  for (const auto& line : s.h.log_lines())
    down_lines += line.find("not restarting: a restart does not fix") != std::string::npos;
  CHECK(down_lines == 3);  // one line per backoff step
}

TEST_CASE("stall-check: health_check is checked when the workflow loads", "[steps][stall]") {
  Harness h;
  std::string err = h.load(R"Y(steps:
  - id: watch
    type: stall-check
    with:
      probe: {exec: {argv: [echo, "{}"]}}
      stalled: processing == 0
      health_check: {command: "nvidia-smi", unti: processing > 0}
)Y");
  CHECK(err.find("health_check has no `unti`") != std::string::npos);
}
