// End-to-end: the shipped workflows/monitor_instance.yaml attached to an instance that already
// exists in the Vast.ai simulator (scenario key `existing`), stopped with Ctrl+C. Old completions
// are left alone, a new one is acted on once, an API burst is survived, status changes print once.
#include <signal.h>

#include <catch2/catch.hpp>
#include <thread>

#include "engine/io/json.h"
#include "support/run_cli.h"
#include "support/sim_server.h"

using flowrun::Json;
using flowrun::test::CliResult;
using flowrun::test::FlowrunProcess;
using flowrun::test::SimServer;
using flowrun::test::TempDir;
using namespace std::chrono_literals;

namespace {

const char* const kMarker = "VASTAI_PIPELINE_COMPLETED_SUCCESSFULLY";

size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

// Instance 9001 already finished one job (its log holds the marker) when the simulator starts.
Json existing(Json later, Json status) {
  return Json::array(
      {{{"id", 9001},
        {"gpu_name", "RTX 4090"},
        {"dph_total", 0.35},
        {"log", Json::array({"starting job 1", "Uploading to B2... https://b.sim/output/old_result.mp4", kMarker})},
        {"later", std::move(later)},
        {"status", std::move(status)}}});
}

std::vector<std::string> args(const TempDir&, std::vector<std::string> extra) {
  std::vector<std::string> a = {std::string(FLOWRUN_SOURCE_DIR) + "/workflows/monitor_instance.yaml",
                                "--set",
                                "instance_id=9001",
                                "--set",
                                "provider=vastai",
                                "--set",
                                "interval=200ms",
                                "--set",
                                "backoff_first=200ms",
                                "--set",
                                "backoff_max=1s"};
  for (auto& e : extra) a.push_back(std::move(e));
  return a;
}

}  // namespace

TEST_CASE(
    "monitor_instance: a new completion acted on once and old ones not - a 429/5xx burst survived - each status change "
    "once",
    "[e2e][vastai][monitor]") {
  // The first show request fails 4 times (all the provider's own tries): one failed check.
  // The monitor attaches after it (about 4 s in); then the instance exits, runs again, and
  // finishes a second job.
  Json scenario = {{"api_key", "test-key"},
                   {"faults", {{"show", Json::array({429, 503, 429, 502})}}},
                   {"log_upload_misses", 0},
                   {"existing", existing(Json::array({Json::array({7.0, "starting job 2"}),
                                                      Json::array({7.2, "RESULT_URL=https://results.sim/new.mp4"}),
                                                      Json::array({7.4, kMarker})}),
                                         Json::array({Json::array({5.0, "exited"}), Json::array({6.0, "running"})}))}};
  SimServer sim(scenario, "vast_sim.py");
  TempDir dir;
  std::map<std::string, std::string> env{
      {"FLOWRUN_STATE_DIR", dir.file("state")}, {"VAST_URL", sim.url()}, {"VAST_API_KEY", "test-key"}};
  FlowrunProcess run(args(dir, {"--set", "auto_destroy=true"}), env);
  bool destroyed = false;
  for (int i = 0; i < 100 && !destroyed; ++i) {
    std::this_thread::sleep_for(200ms);
    destroyed = !sim.get_json("/_sim/state")["destroyed"].empty();
  }
  std::this_thread::sleep_for(1500ms);  // it goes on watching the destroyed instance
  run.signal(SIGINT);
  CliResult r = run.wait();
  const std::string out = r.out + r.err;
  INFO(out);
  CHECK(r.exit_code == 130);
  REQUIRE(destroyed);
  Json state = sim.get_json("/_sim/state");
  CHECK(state["destroyed"] == Json::array({9001}));
  CHECK(state["created"].empty());
  CHECK(state["create_calls"] == 0);

  CHECK(count_of(out, "probe failed (1 in a row") == 1);
  CHECK(count_of(out, "connection restored after 1 failed attempts") == 1);
  CHECK(count_of(out, "1 old completion(s) already in the log") == 1);
  CHECK(count_of(out, "| starting job 1") == 0);  // full=false: the old log is not shown
  CHECK(count_of(out, "| starting job 2") == 1);
  CHECK(count_of(out, "status changed: running -> exited") == 1);
  CHECK(count_of(out, "status changed: exited -> running") == 1);
  CHECK(count_of(out, "NEW COMPLETION") == 1);
  CHECK(count_of(out, "NEW COMPLETION on instance 9001 (GPU RTX 4090, $0.350/h): result https://results.sim/new.mp4") ==
        1);
  CHECK(count_of(out, "old_result.mp4") == 0);
  CHECK(count_of(out, "auto_destroy: instance 9001 destroyed; still watching") == 1);
  CHECK(count_of(out, "instance 9001 is gone") == 1);
  CHECK(count_of(out, "flowrun resume ") >= 1);
  CHECK(count_of(out, "stopped watching instance 9001 (destroyed by auto_destroy)") == 1);
  // The restored line comes before what the first good answer showed.
  CHECK(out.find("connection restored after 1 failed attempts") < out.find("old completion(s)"));
}

TEST_CASE("monitor_instance: an old completion is shown with full=true and never acted on", "[e2e][vastai][monitor]") {
  Json scenario = {
      {"api_key", "test-key"}, {"log_upload_misses", 0}, {"existing", existing(Json::array(), Json::array())}};
  SimServer sim(scenario, "vast_sim.py");
  TempDir dir;
  std::map<std::string, std::string> env{
      {"FLOWRUN_STATE_DIR", dir.file("state")}, {"VAST_URL", sim.url()}, {"VAST_API_KEY", "test-key"}};
  FlowrunProcess run(args(dir, {"--set", "auto_destroy=true", "--set", "full=true"}), env);
  std::this_thread::sleep_for(2500ms);
  run.signal(SIGINT);
  CliResult r = run.wait();
  const std::string out = r.out + r.err;
  INFO(out);
  CHECK(r.exit_code == 130);
  CHECK(sim.get_json("/_sim/state")["destroyed"].empty());
  CHECK(count_of(out, "| starting job 1") == 1);
  CHECK(count_of(out, std::string("| ") + kMarker) == 1);
  CHECK(count_of(out, "1 old completion(s) already in the log") == 1);
  CHECK(count_of(out, "NEW COMPLETION") == 0);
  CHECK(count_of(out, "instance 9001 is running") == 1);
  CHECK(count_of(out, "status changed") == 0);
  CHECK(count_of(out, "stopped watching instance 9001 (left as it is)") == 1);
  CHECK(count_of(out, "vastai destroy instance 9001") == 1);
}
