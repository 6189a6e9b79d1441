// End-to-end: the shipped workflows/reprocess_images.yaml, run by the real binary against the
// processing API simulator (tools/sim/processing_sim.py) with a `docker` on PATH that records
// its calls and restarts the simulated worker (tools/sim/fake_docker/docker).
#include <catch2/catch.hpp>
#include <cstdlib>
#include <regex>

#include "engine/io/json.h"
#include "support/run_cli.h"
#include "support/sim_server.h"

using flowrun::Json;
using flowrun::test::CliResult;
using flowrun::test::run_flowrun;
using flowrun::test::SimServer;
using flowrun::test::TempDir;

namespace {

struct Pipeline {
  SimServer sim;
  TempDir dir;
  std::map<std::string, std::string> env;

  explicit Pipeline(const Json& scenario) : sim(scenario, "processing_sim.py") {
    env = {{"FLOWRUN_STATE_DIR", dir.file("state")},
           {"FAKE_DOCKER_LOG", dir.file("docker.log")},
           {"PROCESSING_SIM_URL", sim.url()},
           {"PATH", std::string(FLOWRUN_SOURCE_DIR) + "/tools/sim/fake_docker:" + std::getenv("PATH")}};
  }

  CliResult run(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {std::string(FLOWRUN_SOURCE_DIR) + "/workflows/reprocess_images.yaml",
                                     "--set",
                                     "api_url=" + sim.url(),
                                     "--set",
                                     "interval=200ms",
                                     "--set",
                                     "settle=100ms"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_flowrun(args, env);
  }

  std::vector<Json> docker_calls() const {
    std::vector<Json> calls;
    std::istringstream lines(dir.read("docker.log"));
    for (std::string line; std::getline(lines, line);)
      if (!line.empty()) calls.push_back(Json::parse(line));
    return calls;
  }

  Json events() const { return sim.get_json("/_sim/events"); }
};

// "312ms", "1.2s", "2m3s" (format_duration) as seconds.
double seconds_of(const std::string& text) {
  std::smatch m;
  if (std::regex_match(text, m, std::regex("(\\d+)ms"))) return std::stod(m[1]) / 1000.0;
  if (std::regex_match(text, m, std::regex("([\\d.]+)s"))) return std::stod(m[1]);
  FAIL("not a short duration: " << text);
  return 0;
}

// From the simulator's events: for each restart, the time from the last status before it (the
// stalled check that reached the threshold) to the first status after it that shows work moving.
std::vector<double> sim_recovery_times(const Json& events) {
  std::vector<double> times;
  std::optional<double> last_status, detected;
  for (const auto& e : events) {
    if (e["event"] == "restart" && !detected) detected = last_status;
    if (e["event"] != "status") continue;
    last_status = e["t"].get<double>();
    if (detected && !e["stalled"].get<bool>()) {
      times.push_back(e["t"].get<double>() - *detected);
      detected.reset();
    }
  }
  std::sort(times.begin(), times.end());
  return times;
}

}  // namespace

TEST_CASE("reprocess_images: two stalls, each restarted and requeued exactly at the threshold, until drained",
          "[e2e][supervise]") {
  Pipeline p(Json{{"total", 120}, {"pending", 40}, {"rate", 60}, {"stall_at", {20, 70}}});
  CliResult r = p.run();
  INFO(r.err);
  REQUIRE(r.exit_code == 0);

  auto calls = p.docker_calls();
  REQUIRE(calls.size() == 2);
  for (const auto& c : calls) CHECK(c == Json::array({"compose", "restart", "worker"}));

  // Before each restart the API had answered exactly `threshold` (3) stalled statuses in a row:
  // not fewer (acting too early), not more (acting late). Each restart is followed by a batch.
  int stalled_in_a_row = 0, restarts = 0;
  bool expect_batch = false;
  Json last_status;
  for (const auto& e : p.events()) {
    if (e["event"] == "status") {
      stalled_in_a_row = e["stalled"].get<bool>() ? stalled_in_a_row + 1 : 0;
      last_status = e;
    } else if (e["event"] == "restart") {
      CHECK(stalled_in_a_row == 3);
      stalled_in_a_row = 0;
      ++restarts;
      expect_batch = true;
    } else if (e["event"] == "batch") {
      CHECK(expect_batch);
      expect_batch = false;
    }
  }
  CHECK(restarts == 2);
  CHECK_FALSE(expect_batch);
  CHECK(last_status["completed"] == 120);  // ended because the queue was drained
  CHECK(last_status["pending"] == 0);
  CHECK(std::regex_search(r.err, std::regex("\\d\\d:\\d\\d:\\d\\d INFO \\[supervise\\] Progress: \\d+/120 \\(")));
  CHECK(r.err.find("succeeded: 120 of 120 images completed, 2 restarts, 2 stalls detected, 0 failed health checks") !=
        std::string::npos);

  // The end report's recovery times are the simulator's: stall detected to processing again.
  std::smatch m;
  REQUIRE(std::regex_search(r.err, m, std::regex("recovery time min (\\S+), median (\\S+), max (\\S+)\n")));
  auto sim = sim_recovery_times(p.events());
  REQUIRE(sim.size() == 2);
  CHECK(seconds_of(m[1]) == Approx(sim[0]).margin(0.15));
  CHECK(seconds_of(m[3]) == Approx(sim[1]).margin(0.15));
  CHECK(seconds_of(m[2]) == Approx((sim[0] + sim[1]) / 2).margin(0.15));
  CHECK(seconds_of(m[1]) >= 0.1);  // at least the settle time
  CHECK(r.err.find("healthy after recovery 2: `processing > 0 or pending == 0` after") != std::string::npos);
}

TEST_CASE("reprocess_images: when restarts never help, the restart-loop guard ends the run", "[e2e][supervise]") {
  Pipeline p(Json{{"total", 100}, {"pending", 50}, {"rate", 60}, {"stall_at", {10}}, {"restart_helps", false}});
  CliResult r = p.run({"--set", "max_restarts=2", "--set", "health_until="});  // no health check
  INFO(r.err);
  CHECK(r.exit_code == 1);
  CHECK(
      r.err.find("restart loop: stalled again after 2 recoveries within 1h (max_recoveries 2): the on_stall steps are "
                 "not helping") != std::string::npos);
  CHECK(p.docker_calls().size() == 2);
}

TEST_CASE(
    "reprocess_images: a worker still idle after its restart fails the health check, no batch, and it counts toward "
    "the loop guard",
    "[e2e][supervise]") {
  Pipeline p(Json{{"total", 100}, {"pending", 50}, {"rate", 60}, {"stall_at", {10}}, {"restart_helps", false}});
  CliResult r = p.run({"--set", "max_restarts=2", "--set", "health_grace=500ms"});
  INFO(r.err);
  CHECK(r.exit_code == 1);
  CHECK(
      r.err.find("health check failed after recovery 1: `processing > 0 or pending == 0` did not hold within 500ms") !=
      std::string::npos);
  CHECK(r.err.find("restart loop: not healthy after 2 recoveries within 1h (max_recoveries 2)") != std::string::npos);
  CHECK(r.err.find("supervision: 2 stalls detected, 2 recoveries (on_stall runs), 2 failed health checks") !=
        std::string::npos);
  CHECK(p.docker_calls().size() == 2);
  int batches = 0;
  for (const auto& e : p.events()) batches += e["event"] == "batch";
  CHECK(batches == 0);
}

TEST_CASE("reprocess_images: a health command that always fails ends the run as a restart loop after max_restarts",
          "[e2e][supervise]") {
  Pipeline p(Json{{"total", 100}, {"pending", 50}, {"rate", 60}, {"stall_at", {10}}, {"restart_helps", false}});
  p.env["FAKE_DOCKER_EXEC_EXIT"] = "9";
  CliResult r = p.run({"--set", "max_restarts=2", "--set", "health_until=", "--set",
                       R"(health_command=["docker", "compose", "exec", "-T", "worker", "nvidia-smi"])"});
  INFO(r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("restart loop: not healthy after 2 recoveries within 1h (max_recoveries 2): health check failed: "
                   "docker compose exec -T worker nvidia-smi exited with 9: NVIDIA-SMI has failed") !=
        std::string::npos);
  auto calls = p.docker_calls();
  REQUIRE(calls.size() == 4);
  CHECK(calls[0] == Json::array({"compose", "restart", "worker"}));
  CHECK(calls[1] == Json::array({"compose", "exec", "-T", "worker", "nvidia-smi"}));
  CHECK(calls[2] == calls[0]);
  CHECK(calls[3] == calls[1]);
  for (const auto& e : p.events()) CHECK(e["event"] != "batch");
}

TEST_CASE("reprocess_images: a health command that passes lets the batch be queued", "[e2e][supervise]") {
  Pipeline p(Json{{"total", 80}, {"pending", 40}, {"rate", 60}, {"stall_at", {20}}});
  CliResult r = p.run({"--set", R"(health_command=["docker", "compose", "exec", "-T", "worker", "nvidia-smi"])"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto calls = p.docker_calls();
  REQUIRE(calls.size() == 2);
  CHECK(calls[1] == Json::array({"compose", "exec", "-T", "worker", "nvidia-smi"}));
  CHECK(r.err.find("succeeded: 80 of 80 images completed, 1 restarts, 1 stalls detected, 0 failed health checks") !=
        std::string::npos);
}

TEST_CASE("reprocess_images: a status endpoint down for a while is backed off, reported, and never restarted for",
          "[e2e][supervise]") {
  // The worker stalls at 10 while the status endpoint is down for 2s: the outage is reported,
  // and the restart waits for three stalled answers in a row after it.
  Pipeline p(Json{{"total", 60}, {"pending", 60}, {"rate", 25}, {"stall_at", {10}}, {"down", {{0.3, 2.3}}}});
  CliResult r = p.run();
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  // The delay doubles from the interval: 200ms, then 400ms...; one line per backoff step.
  CHECK(std::regex_search(r.err, std::regex("probe failed \\(1 in a row, transient[^\n]*status endpoint down, 1 failed "
                                            "probe[^\n]*HTTP 503[^\n]*not restarting: a restart does not fix an "
                                            "API or broker outage; next check in 200ms")));
  CHECK(std::regex_search(r.err,
                          std::regex("probe failed \\(2 in a row, [^\n]*status endpoint down for 2\\d\\dms, 2 failed "
                                     "probes[^\n]*next check in 400ms")));
  CHECK(std::regex_search(r.err, std::regex("status endpoint back after [\\d.]+m?s \\(\\d+ failed probes\\)")));
  CHECK(p.docker_calls().size() == 1);

  // The one restart came after three stalled answers in a row after the outage, none before it.
  int down = 0, stalled_in_a_row = 0;
  bool restarted = false;
  for (const auto& e : p.events()) {
    if (e["event"] == "down") {
      ++down;
      CHECK_FALSE(restarted);
      stalled_in_a_row = 0;
    } else if (e["event"] == "status") {
      stalled_in_a_row = e["stalled"].get<bool>() ? stalled_in_a_row + 1 : 0;
    } else if (e["event"] == "restart") {
      CHECK(stalled_in_a_row == 3);
      restarted = true;
    }
  }
  CHECK(restarted);
  CHECK(down >= 4);
  int lines = 0;
  for (size_t at = 0; (at = r.err.find("not restarting: a restart does not fix", at)) != std::string::npos; ++at)
    ++lines;
  CHECK(lines == down);
  CHECK(
      r.err.find("supervision: 1 stalls detected, 1 recoveries (on_stall runs), 0 failed health checks, recovery time "
                 "min ") != std::string::npos);
  CHECK(r.err.find("; status endpoint down 1 time, " + std::to_string(down) + " failed probes") != std::string::npos);
}

TEST_CASE("faults: a restart command that fails ends the run naming the command and its error",
          "[e2e][supervise][faults]") {
  Pipeline p(Json{{"total", 100}, {"pending", 50}, {"rate", 60}, {"stall_at", {10}}});
  p.env["FAKE_DOCKER_EXIT"] = "1";
  CliResult r = p.run();
  INFO(r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("Error response from daemon: simulated failure") != std::string::npos);
  CHECK(r.err.find("docker compose") != std::string::npos);
  CHECK_FALSE(p.docker_calls().empty());
}
