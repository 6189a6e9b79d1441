// The journal's live table: merged, bounded, redacted, coalesced; pruned with its run; and an
// old journal (events without data, no live table) opened by this version.
#include <catch2/catch.hpp>
#include <thread>

#include "engine/io/redactor.h"
#include "engine/io/sqlite_db.h"
#include "engine/journal/journal.h"
#include "engine/step_api/live_patch.h"
#include "support/sim_server.h"

using namespace flowrun;
using flowrun::test::TempDir;

namespace {

RunRow live_run(const std::string& id, int64_t started_ms) {
  RunRow r;
  r.id = id;
  r.workflow_path = "/w.yaml";
  r.workflow_name = "w";
  r.content_hash = content_hash("text");
  r.status = "running";
  r.started_ms = started_ms;
  return r;
}

Json state_of(Journal& j, const std::string& run, const std::string& path) {
  for (const auto& row : j.live_states(run))
    if (row.path == path) return row.state;
  return Json();
}

}  // namespace

TEST_CASE("journal live: patches merge, and a quick second patch waits for the next commit", "[journal][live]") {
  TempDir dir;
  auto j = Journal::open(dir.file("state"));
  j->create_run(live_run("r", wall_clock_ms()));
  Redactor redactor;
  auto rec = j->recorder("r", redactor);
  auto reader = Journal::open(dir.file("state"));  // another connection: sees only what is committed

  rec->live("v[0].result", {{"progress", 10}, {"last_line", "frame 10/100"}});
  CHECK(state_of(*reader, "r", "v[0].result") == Json({{"progress", 10}, {"last_line", "frame 10/100"}}));

  rec->live("v[0].result", {{"progress", 20}, {"instance", "7"}});
  // Within a second of the first write: merged in memory, not committed on its own.
  CHECK(state_of(*reader, "r", "v[0].result")["progress"] == 10);
  rec->event("v[0]", "item_failed", "x", Json());  // a write that commits anyway takes it along
  CHECK(state_of(*reader, "r", "v[0].result") ==
        Json({{"progress", 20}, {"last_line", "frame 10/100"}, {"instance", "7"}}));

  // A null removes a field (JSON merge patch).
  rec->live("v[0].result", {{"instance", nullptr}});
  rec.reset();  // the recorder's end writes what waits
  CHECK_FALSE(state_of(*reader, "r", "v[0].result").contains("instance"));
  const auto rows = reader->live_states("r");
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].updated_ms > 0);
}

TEST_CASE("journal live: waiting states are written together within a second, or at once past 1 MiB",
          "[journal][live]") {
  TempDir dir;
  auto j = Journal::open(dir.file("state"));
  j->create_run(live_run("r", wall_clock_ms()));
  Redactor redactor;
  auto rec = j->recorder("r", redactor);
  auto reader = Journal::open(dir.file("state"));
  rec->live("a", {{"progress", 1}});  // the first of a quiet second: at once
  rec->live("a", {{"progress", 2}});
  rec->live("b", {{"progress", 1}});
  CHECK(state_of(*reader, "r", "a")["progress"] == 1);
  CHECK(state_of(*reader, "r", "b").is_null());
  // No other write comes: the recorder's writer takes them, a second after the last write.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  CHECK(state_of(*reader, "r", "a")["progress"] == 2);
  CHECK(state_of(*reader, "r", "b")["progress"] == 1);

  // Within the second, but more than 1 MiB waits: written at once (each state is ~16 KiB).
  Json tail = Json::array();
  for (int i = 0; i < 40; ++i) tail.push_back(std::string(400, 'x'));
  for (int i = 0; i < 100; ++i) rec->live("big" + std::to_string(i), {{"log_tail", tail}});
  CHECK(state_of(*reader, "r", "big0").contains("log_tail"));
  CHECK(state_of(*reader, "r", "big50").contains("log_tail"));
}

TEST_CASE("journal live: strings, log_tail and keys are bounded, secrets redacted", "[journal][live]") {
  TempDir dir;
  auto j = Journal::open(dir.file("state"));
  j->create_run(live_run("r", wall_clock_ms()));
  Redactor redactor;
  REQUIRE(redactor.add_secret("hunter22secret"));
  auto rec = j->recorder("r", redactor);
  Json tail = Json::array();
  for (int i = 0; i < 100; ++i) tail.push_back("line " + std::to_string(i) + " " + std::string(1000, 'x'));
  // 399 ASCII bytes then a 2-byte character across the 400-byte bound: cut before it.
  std::string last = std::string(399, 'a') + "\xc3\xa9" + "tail";
  Json patch = {{"log_tail", tail}, {"last_line", last}, {"progress_text", "token hunter22secret here"}};
  for (int i = 0; i < 50; ++i) patch["k" + std::to_string(i)] = i;
  rec->live("p", patch);
  rec.reset();
  const Json s = state_of(*j, "r", "p");
  REQUIRE(s["log_tail"].size() == 40);
  CHECK(s["log_tail"][0].get<std::string>().rfind("line 60 ", 0) == 0);
  CHECK(s["log_tail"][39].get<std::string>().rfind("line 99 ", 0) == 0);
  for (const auto& line : s["log_tail"]) CHECK(line.get<std::string>().size() <= 400);
  CHECK(s["last_line"] == std::string(399, 'a'));
  CHECK(s["progress_text"] == "token *** here");
  CHECK(s.size() <= 32);
}

TEST_CASE("journal live: an object merges into an object, and past 32 keys the known ones stay", "[journal][live]") {
  TempDir dir;
  auto j = Journal::open(dir.file("state"));
  j->create_run(live_run("r", wall_clock_ms()));
  Redactor redactor;
  auto rec = j->recorder("r", redactor);
  rec->live("p", {{"detail", {{"a", 1}, {"b", {{"c", 2}}}}}, {"log_tail", {"x", "y"}}});
  rec->live("p", {{"detail", {{"a", nullptr}, {"b", {{"d", 3}}}}}, {"log_tail", {"z"}}});
  rec->live("p", {{"note", {{"gone", nullptr}}}});  // an object with only nulls becomes {}
  Json extra = Json::object();
  for (int i = 0; i < 40; ++i) extra["k" + std::to_string(i)] = i;
  rec->live("p", extra);
  rec->live("p", {{"status", "running"}, {"progress", 50}});
  rec.reset();
  const Json s = state_of(*j, "r", "p");
  CHECK(s["detail"] == Json({{"b", {{"c", 2}, {"d", 3}}}}));
  CHECK(s["log_tail"] == Json({"z"}));  // a list replaces
  CHECK(s.size() == 32);
  CHECK(s["status"] == "running");  // known keys stay over others
  CHECK(s["progress"] == 50);
  CHECK(s.contains("log_tail"));
}

TEST_CASE("journal live: lines added to log_tail go at its end, which keeps its last N", "[journal][live]") {
  TempDir dir;
  auto j = Journal::open(dir.file("state"));
  j->create_run(live_run("r", wall_clock_ms()));
  Redactor redactor;
  REQUIRE(redactor.add_secret("hunter22secret"));
  auto rec = j->recorder("r", redactor);
  auto reader = Journal::open(dir.file("state"));
  rec->live("p", {{"log_tail", {"a", "b", "c"}}, {"last_line", "c"}});  // written at once: the row holds it
  Json more = log_tail_added({"d", "token hunter22secret"}, 4);
  more["last_line"] = "token hunter22secret";
  rec->live("p", more);                      // read back from the row
  rec->live("p", log_tail_added({"f"}, 4));  // from the state waiting to be written
  rec.reset();
  const Json s = state_of(*reader, "r", "p");
  CHECK(s["log_tail"] == Json({"c", "d", "token ***", "f"}));
  CHECK(s["last_line"] == "token ***");
  CHECK_FALSE(s.contains(kLogTailAdded));

  // Past 40 lines in all, whatever keep says: the receiver's bound holds for the merged tail.
  auto again = j->recorder("r", redactor);
  for (int i = 0; i < 30; ++i) again->live("q", log_tail_added({"q" + std::to_string(i), "more"}, 1000));
  again.reset();
  CHECK(state_of(*reader, "r", "q")["log_tail"].size() == 40);

  Json state = {{"progress", 5}};  // no tail yet; a bad keep keeps what the receiver allows
  merge_live_patch(state, {{kLogTailAdded, {{"lines", {"x", "y"}}, {"keep", -1}}}}, 1);
  CHECK(state == Json({{"progress", 5}, {"log_tail", {"y"}}}));
  merge_live_patch(state, {{kLogTailAdded, "not an object"}});
  CHECK(state == Json({{"progress", 5}, {"log_tail", {"y"}}}));
}

TEST_CASE("journal live: pruning a run deletes its live rows", "[journal][live]") {
  TempDir dir;
  auto j = Journal::open(dir.file("state"));
  const int64_t t = wall_clock_ms();
  j->create_run(live_run("old", t - 1000));
  j->create_run(live_run("new", t));
  Redactor redactor;
  for (const char* id : {"old", "new"}) {
    auto rec = j->recorder(id, redactor);
    rec->live("a", {{"progress", 5}});
  }
  j->set_run_status("old", "succeeded");
  j->set_run_status("new", "succeeded");
  CHECK(j->live_states("old").size() == 1);
  CHECK(j->prune_finished_runs("/w.yaml", 1) == 1);
  CHECK(j->live_states("old").empty());
  CHECK(j->live_states("new").size() == 1);
}

TEST_CASE("journal: an old journal (events without data, no live table) opens and is upgraded", "[journal][live]") {
  TempDir dir;
  std::filesystem::create_directories(dir.file("state"));
  {
    SqliteDb old(dir.file("state/journal.db"), true);
    old.exec(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO meta VALUES ('schema_version', '1');"
        "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, at_ms INTEGER NOT NULL, "
        "path TEXT NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL);"
        "INSERT INTO events (run_id, at_ms, path, kind, message) VALUES ('r', 5, 'a', 'retry', 'again');");
  }
  auto j = Journal::open(dir.file("state"));
  const auto events = j->events("r");
  REQUIRE(events.size() == 1);
  CHECK(events[0]["message"] == "again");
  CHECK(events[0]["data"] == "null");
  j->create_run(live_run("r", wall_clock_ms()));
  Redactor redactor;
  auto rec = j->recorder("r", redactor);
  rec->event("a", "stalled", "stuck", {{"stalls", 3}});
  rec->live("a", {{"progress", 1}});
  rec.reset();
  CHECK(j->events("r").back()["data"] == R"({"stalls":3})");
  CHECK(j->live_states("r").size() == 1);
}
