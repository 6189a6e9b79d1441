// run_view, runs_overview and log_tail on a journal written by hand: items from step rows and
// live states, cost from instance events, statuses after the run's end.
#include "engine/journal/run_view.h"

#include <catch2/catch.hpp>

#include "engine/io/redactor.h"
#include "engine/io/sqlite_db.h"
#include "engine/journal/journal.h"
#include "support/sim_server.h"

using namespace flowrun;
using flowrun::test::TempDir;

namespace {

// A run of a 4-item for_each: item 0 succeeded (instance i0 at $2/h for one hour), item 1
// failed, item 2 running (instance i2 at $1/h, progress 42%), item 3 not started.
std::unique_ptr<Journal> hand_made(const TempDir& dir) {
  auto j = Journal::open(dir.file("state"));
  RunRow run;
  run.id = "r";
  run.workflow_path = "/w/video_batch.yaml";
  run.workflow_name = "video_batch";
  run.content_hash = "h";
  run.status = "running";
  run.started_ms = 1000;
  j->create_run(run);
  Redactor redactor;
  auto rec = j->recorder("r", redactor);
  rec->live("videos", {{"items", 4}});
  rec->step_started("videos", 0);
  rec->step_started("videos[0]", 0);
  rec->step_finished("videos[0].gpu", "succeeded", 1, {{"instance_id", "i0"}, {"api_url", 5}}, "", "",
                     Durability::kNow);
  rec->step_finished("videos[0].result", "succeeded", 1, {{"marker_line", "DONE"}, {"result_url", "https://b/0.mp4"}},
                     "", "", Durability::kNow);
  rec->step_finished("videos[0]", "succeeded", 0, Json::object(), "", "", Durability::kNow);
  rec->step_started("videos[1]", 0);
  rec->step_finished("videos[1]", "failed", 0, Json::object(), "", "fail_on matched", Durability::kNow);
  rec->step_started("videos[2]", 0);
  rec->live("videos[2]", {{"status", "running"}, {"item", "c.mp4"}});
  rec->live("videos[2].gpu", {{"instance", "i2"}, {"price_per_hour", 1}});
  rec->live("videos[2].result", {{"progress", 42},
                                 {"progress_text", "frame 42/100"},
                                 {"last_line", "frame 42/100"},
                                 {"log_tail", {"frame 41/100", "frame 42/100"}},
                                 {"instance", "i2"}});
  rec->event("videos[0].gpu", "instance_started", "rented", {{"instance", "i0"}, {"price_per_hour", 2.0}});
  rec->event("videos[0].finally.cleanup", "instance_destroyed", "gone", {{"instance", "i0"}});
  rec->event("videos[2].gpu", "instance_started", "rented", {{"instance", "i2"}, {"price_per_hour", 1.0}});
  rec->event("videos[1]", "item_failed", "item 1 (b.mp4) failed", {{"item", "b.mp4"}, {"index", 1}});
  rec.reset();
  // Times made exact.
  SqliteDb db(dir.file("state/journal.db"), false);
  db.exec("UPDATE runs SET started_ms = 1000, updated_ms = 1000");
  db.exec("UPDATE steps SET started_ms = 1000, finished_ms = 61000 WHERE path = 'videos[0]'");
  db.exec("UPDATE steps SET started_ms = 1000, finished_ms = 31000 WHERE path = 'videos[1]'");
  db.exec("UPDATE steps SET started_ms = 2000, finished_ms = 0 WHERE path IN ('videos[2]', 'videos')");
  db.exec("UPDATE events SET at_ms = 1000 WHERE kind = 'instance_started'");
  db.exec("UPDATE events SET at_ms = 3601000 WHERE kind = 'instance_destroyed'");
  return j;
}

}  // namespace

TEST_CASE("run view: a running for_each's items, totals, cost and live states", "[journal][run_view]") {
  TempDir dir;
  auto j = hand_made(dir);
  const int64_t now = 1801000;  // half an hour of i2
  const Json v = run_view(*j, "r", now);
  CHECK(v["run"]["id"] == "r");
  CHECK(v["run"]["workflow"] == "video_batch");
  CHECK(v["run"]["status"] == "running");
  CHECK(v["run"]["duration_ms"] == 1800000);
  CHECK(v["run"]["cost"].get<double>() == Approx(2.5));

  REQUIRE(v["for_each"].size() == 1);
  const Json& fe = v["for_each"][0];
  CHECK(fe["path"] == "videos");
  CHECK(fe["totals"]["items"] == 4);
  CHECK(fe["totals"]["pending"] == 1);
  CHECK(fe["totals"]["running"] == 1);
  CHECK(fe["totals"]["succeeded"] == 1);
  CHECK(fe["totals"]["failed"] == 1);
  CHECK(fe["totals"]["cancelled"] == 0);
  CHECK(fe["totals"]["cost"].get<double>() == Approx(2.5));
  REQUIRE(fe["items"].size() == 4);
  const Json& done = fe["items"][0];
  CHECK(done["status"] == "succeeded");
  CHECK(done["elapsed_ms"] == 60000);
  CHECK(done["cost"].get<double>() == Approx(2.0));
  CHECK(done["result_url"] == "https://b/0.mp4");
  CHECK(fe["items"][1]["status"] == "failed");
  CHECK(fe["items"][1]["result_url"].is_null());
  const Json& running = fe["items"][2];
  CHECK(running["path"] == "videos[2]");
  CHECK(running["item"] == "c.mp4");
  CHECK(running["status"] == "running");
  CHECK(running["progress"] == 42);
  CHECK(running["progress_text"] == "frame 42/100");
  CHECK(running["last_line"] == "frame 42/100");
  CHECK(running["instance"] == "i2");
  CHECK(running["elapsed_ms"] == now - 2000);
  CHECK(running["cost"].get<double>() == Approx(0.5));
  const Json& pending = fe["items"][3];
  CHECK(pending["status"] == "pending");
  CHECK(pending["elapsed_ms"].is_null());
  CHECK(pending["progress"].is_null());

  CHECK(v["live"]["videos[2].result"]["progress"] == 42);
  CHECK(v["events"].size() == 4);
  CHECK(v["events"][3]["kind"] == "item_failed");
  CHECK(v["events"][3]["data"]["item"] == "b.mp4");
  bool found = false;
  for (const auto& s : v["steps"])
    if (s["path"] == "videos[0].result") {
      found = true;
      CHECK(s["outputs"]["result_url"] == "https://b/0.mp4");
      CHECK(s["status"] == "succeeded");
    }
  CHECK(found);

  CHECK(log_tail(*j, "r", "videos[2]") == Json({"frame 41/100", "frame 42/100"}));
  CHECK(log_tail(*j, "r", "videos[2].result") == Json({"frame 41/100", "frame 42/100"}));
  CHECK(log_tail(*j, "r", "videos[1]") == Json::array());
  CHECK(run_view(*j, "nope", now).is_null());
}

TEST_CASE("run view: after the run ended, a running item is cancelled and cost stops at the end",
          "[journal][run_view]") {
  TempDir dir;
  auto j = hand_made(dir);
  j->set_run_status("r", "cancelled", "cancelled by SIGINT");
  SqliteDb db(dir.file("state/journal.db"), false);
  db.exec("UPDATE runs SET updated_ms = 3601000");
  const Json v = run_view(*j, "r", 99'000'000);
  CHECK(v["run"]["duration_ms"] == 3600000);
  CHECK(v["run"]["cost"].get<double>() == Approx(3.0));  // i0: 2 dollars, i2: one hour at 1
  const Json& fe = v["for_each"][0];
  CHECK(fe["items"][2]["status"] == "cancelled");
  CHECK(fe["items"][2]["elapsed_ms"] == 3601000 - 2000);
  CHECK(fe["totals"]["cancelled"] == 1);
  CHECK(fe["totals"]["running"] == 0);

  const Json overview = runs_overview(*j, 10, 99'000'000);
  REQUIRE(overview["runs"].size() == 1);
  CHECK(overview["runs"][0]["id"] == "r");
  CHECK(overview["runs"][0]["status"] == "cancelled");
  CHECK(overview["runs"][0]["error"] == "cancelled by SIGINT");
  CHECK(overview["runs"][0]["cost"].get<double>() == Approx(3.0));
}

TEST_CASE("run view: a 1,000-item run is built quickly", "[journal][run_view]") {
  TempDir dir;
  auto j = Journal::open(dir.file("state"));
  RunRow run;
  run.id = "big";
  run.workflow_path = "/w.yaml";
  run.workflow_name = "w";
  run.content_hash = "h";
  run.status = "running";
  run.started_ms = wall_clock_ms();
  j->create_run(run);
  Redactor redactor;
  auto rec = j->recorder("big", redactor);
  rec->live("v", {{"items", 1000}});
  for (int i = 0; i < 1000; ++i) {
    const std::string p = "v[" + std::to_string(i) + "]";
    rec->step_finished(p + ".a", "succeeded", 1, {{"url", "https://x/" + std::to_string(i)}}, "", "",
                       Durability::kWithNextWrite);
    rec->step_finished(p, i % 10 ? "succeeded" : "failed", 0, Json::object(), "", "", Durability::kWithNextWrite);
    rec->live(p + ".a", {{"progress", i % 100}});
  }
  rec.reset();
  const auto t0 = std::chrono::steady_clock::now();
  const Json v = run_view(*j, "big", wall_clock_ms());
  const auto took = std::chrono::steady_clock::now() - t0;
  REQUIRE(v["for_each"].size() == 1);
  CHECK(v["for_each"][0]["totals"]["failed"] == 100);
  CHECK(v["for_each"][0]["totals"]["succeeded"] == 900);
  CHECK(v["for_each"][0]["items"][999]["result_url"] == "https://x/999");
  CHECK(v["for_each"][0]["items"][999]["progress"] == 99);
  CHECK(took < std::chrono::seconds(2));
}
