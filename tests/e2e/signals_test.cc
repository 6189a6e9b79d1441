// End-to-end: what a running video_batch (local provider) leaves for live views and
// notifications in the journal: item events with outputs, instance events with the simulated
// price, progress in the live table, and run_view built from all of it.
#include <catch2/catch.hpp>

#include "engine/io/json.h"
#include "engine/journal/journal.h"
#include "engine/journal/run_view.h"
#include "support/run_cli.h"
#include "support/sim_server.h"

using flowrun::Json;
using flowrun::test::CliResult;
using flowrun::test::run_flowrun;
using flowrun::test::TempDir;

TEST_CASE("video_batch on the local provider records item and instance events, live progress and a run view",
          "[e2e][local][signals]") {
  TempDir dir;
  std::filesystem::create_directories(dir.file("videos"));
  const std::vector<std::string> names = {"alpha.mp4", "bravo.mp4", "charlie.mp4"};
  for (const auto& name : names) dir.write("videos/" + name, "frames of " + name);
  CliResult r = run_flowrun(
      {std::string(FLOWRUN_SOURCE_DIR) + "/workflows/video_batch.yaml", "--set", "input_dir=" + dir.file("videos"),
       "--set", "output_dir=" + dir.file("out"), "--set", "poll_interval=200ms", "--set", "local_price=3.6"},
      {{"FLOWRUN_STATE_DIR", dir.file("state")}, {"JOB_STAGE_DELAY", "0.05"}});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const std::string run_id = flowrun::test::newest_run_id(dir.file("state"));
  auto journal = flowrun::Journal::open(dir.file("state"));

  std::map<std::string, int> kinds;
  for (const auto& e : journal->events(run_id)) {
    const std::string kind = e["kind"];
    ++kinds[kind];
    const Json data = Json::parse(e["data"].get<std::string>());
    if (kind == "item_succeeded") {
      CHECK(data["index"].is_number());
      CHECK(data["outputs"]["result"]["outputs"]["result_url"].get<std::string>().rfind("file://", 0) == 0);
    }
    if (kind == "instance_started") {
      CHECK(data["price_per_hour"] == 3.6);
      CHECK(data["gpu"] == "local");
    }
  }
  CHECK(kinds["item_succeeded"] == 3);
  CHECK(kinds["item_failed"] == 0);
  CHECK(kinds["instance_started"] == 3);
  CHECK(kinds["instance_destroyed"] == 3);

  const Json view = flowrun::run_view(*journal, run_id, flowrun::wall_clock_ms());
  CHECK(view["run"]["status"] == "succeeded");
  CHECK(view["run"]["cost"].get<double>() > 0);
  REQUIRE(view["for_each"].size() == 1);
  const Json& fe = view["for_each"][0];
  CHECK(fe["path"] == "videos");
  CHECK(fe["totals"]["items"] == 3);
  CHECK(fe["totals"]["succeeded"] == 3);
  CHECK(fe["totals"]["pending"] == 0);
  CHECK(fe["totals"]["cost"].get<double>() > 0);
  for (const auto& item : fe["items"]) {
    INFO(item.dump());
    CHECK(item["status"] == "succeeded");
    CHECK(item["progress"] == 100.0);
    CHECK(item["result_url"].get<std::string>().rfind("file://", 0) == 0);
    CHECK(item["last_line"] == "VASTAI_PIPELINE_COMPLETED_SUCCESSFULLY");
    CHECK(item["instance"].is_string());
    CHECK(item["elapsed_ms"].get<int64_t>() > 0);
    CHECK(std::find(names.begin(), names.end(),
                    std::filesystem::path(item["item"].get<std::string>()).filename().string()) != names.end());
  }
  const Json tail = flowrun::log_tail(*journal, run_id, "videos[0]");
  REQUIRE(tail.is_array());
  CHECK(tail.back() == "VASTAI_PIPELINE_COMPLETED_SUCCESSFULLY");

  const Json overview = flowrun::runs_overview(*journal, 5, flowrun::wall_clock_ms());
  REQUIRE(overview["runs"].size() == 1);
  CHECK(overview["runs"][0]["cost"] == view["run"]["cost"]);
}
