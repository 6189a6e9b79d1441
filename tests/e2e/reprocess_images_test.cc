// End-to-end: the shipped workflows/reprocess_images.yaml, run by the real binary against the
// processing API simulator (tests/sim/processing_sim.py) with a `docker` on PATH that records
// its calls and restarts the simulated worker (tests/sim/fake_docker/docker).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <regex>

#include "engine/json.h"
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
           {"PATH", std::string(FLOWRUN_SOURCE_DIR) + "/tests/sim/fake_docker:" + std::getenv("PATH")}};
  }

  CliResult run(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {std::string(FLOWRUN_SOURCE_DIR) + "/workflows/reprocess_images.yaml",
                                     "--set", "api_url=" + sim.url(), "--set", "interval=200ms",
                                     "--set", "settle=100ms"};
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

}  // namespace

TEST_CASE("reprocess_images: two stalls, each restarted and requeued exactly at the threshold, until drained", "[e2e][supervise]") {
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
  CHECK(r.err.find("succeeded: 120 of 120 images completed, 2 restarts") != std::string::npos);
}

TEST_CASE("reprocess_images: when restarts never help, the restart-loop guard ends the run", "[e2e][supervise]") {
  Pipeline p(Json{{"total", 100}, {"pending", 50}, {"rate", 60}, {"stall_at", {10}}, {"restart_helps", false}});
  CliResult r = p.run({"--set", "max_restarts=2"});
  INFO(r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("stalled again after 2 recoveries within 1h (max_recoveries 2): the on_stall steps are not helping") !=
        std::string::npos);
  CHECK(p.docker_calls().size() == 2);
}

TEST_CASE("reprocess_images: a status endpoint down for a while is backed off and recovered from", "[e2e][supervise]") {
  Pipeline p(Json{{"total", 60}, {"pending", 60}, {"rate", 25}, {"down", {{0.3, 1.2}}}});
  CliResult r = p.run();
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  // The delay doubles from the interval: 200ms, then 400ms...
  CHECK(std::regex_search(r.err, std::regex("probe failed \\(1 in a row, transient[^\n]*HTTP 503[^\n]*next check in 200ms")));
  CHECK(std::regex_search(r.err, std::regex("probe failed \\(2 in a row, transient[^\n]*next check in 400ms")));
  CHECK(r.err.find("probe recovered after") != std::string::npos);
  CHECK(p.docker_calls().empty());
}

TEST_CASE("faults: a restart command that fails ends the run naming the command and its error", "[e2e][supervise][faults]") {
  Pipeline p(Json{{"total", 100}, {"pending", 50}, {"rate", 60}, {"stall_at", {10}}});
  p.env["FAKE_DOCKER_EXIT"] = "1";
  CliResult r = p.run();
  INFO(r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("Error response from daemon: simulated failure") != std::string::npos);
  CHECK(r.err.find("docker compose") != std::string::npos);
  CHECK_FALSE(p.docker_calls().empty());
}
