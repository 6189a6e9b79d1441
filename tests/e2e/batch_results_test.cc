// End-to-end: the shipped workflows/batch_results.yaml, run by the real binary on a schedule
// against the Message Batches simulator (tests/sim/batch_sim.py), writing into SQLite. An audit
// trigger the test adds records every write to `requests`, so "exactly once" is counted, not
// assumed.
#include <signal.h>

#include <catch2/catch.hpp>

#include <random>
#include <thread>

#include "engine/sqlite_db.h"
#include "support/run_cli.h"
#include "support/sim_server.h"

using flowrun::Json;
using flowrun::SqliteDb;
using flowrun::test::CliResult;
using flowrun::test::FlowrunProcess;
using flowrun::test::run_flowrun;
using flowrun::test::SimServer;
using flowrun::test::TempDir;
using namespace std::chrono_literals;

namespace {

const std::string kApiKey = "sk-ant-test-3f9a1c";

Json results_of(const std::string& prefix, int n) {
  const char* kinds[] = {"succeeded", "errored", "canceled", "expired"};
  Json out = Json::array();
  for (int i = 0; i < n; ++i) {
    Json r = {{"custom_id", prefix + std::to_string(i)}, {"type", kinds[i % 4]}};
    if (i % 4 == 0) r["text"] = i % 8 == 0 ? "{\"label\": \"cat\", \"n\": " + std::to_string(i) + "}" : "plain text";
    if (i % 4 == 1) r["error"] = "prompt is too long";
    out.push_back(r);
  }
  return out;
}

struct BatchMonitor {
  TempDir dir;
  SimServer sim;
  std::map<std::string, std::string> env;

  explicit BatchMonitor(const Json& scenario) : sim(scenario, "batch_sim.py") {
    env = {{"FLOWRUN_STATE_DIR", dir.file("state")},
           {"ANTHROPIC_API_KEY", kApiKey},
           {"ANTHROPIC_BASE_URL", sim.url()}};
    CliResult setup = run_flowrun({std::string(FLOWRUN_SOURCE_DIR) + "/workflows/batch_results_setup.yaml", "--set",
                                   "database=" + db_path()},
                                  env);
    REQUIRE(setup.exit_code == 0);
    SqliteDb db(db_path(), false);
    db.exec(R"SQL(
      CREATE TABLE audit (custom_id TEXT NOT NULL, what TEXT NOT NULL);
      CREATE TRIGGER audit_update AFTER UPDATE ON requests BEGIN
        INSERT INTO audit VALUES (new.custom_id, 'update'); END;
      CREATE TRIGGER audit_insert AFTER INSERT ON requests WHEN new.status != 'pending' BEGIN
        INSERT INTO audit VALUES (new.custom_id, 'insert'); END;)SQL");
    for (const auto& [id, batch] : scenario["batches"].items()) {
      db.query("INSERT INTO batches (id) VALUES (?)", {id});
      for (const auto& r : batch["results"])
        if (!r.value("unlisted", false)) db.query("INSERT INTO requests (custom_id, batch_id) VALUES (?, ?)", {r["custom_id"], id});
    }
  }

  std::string db_path() const { return dir.file("results.db"); }

  std::vector<std::string> args(std::vector<std::string> extra) const {
    std::vector<std::string> a = {std::string(FLOWRUN_SOURCE_DIR) + "/workflows/batch_results.yaml", "--set",
                                  "database=" + db_path(), "--log-file", dir.file("monitor.log")};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

  std::vector<Json> query(const std::string& sql) const {
    SqliteDb db(db_path(), false);
    return db.query(sql);
  }

  int64_t count(const std::string& sql) const { return query(sql).at(0).begin().value().get<int64_t>(); }

  Json stats() const { return sim.get_json("/_sim/stats"); }

  // Waits until `done` holds, checking every 50 ms for up to `limit`.
  bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 30s) const {
    for (auto end = std::chrono::steady_clock::now() + limit; std::chrono::steady_clock::now() < end;) {
      if (done()) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
};

}  // namespace

TEST_CASE("batch_results --every: both batches stored exactly once through 429s and 500s; a second monitor refuses",
          "[e2e][batch]") {
  Json scenario = {
      {"api_key", kApiKey},
      {"batches",
       {{"msgbatch_early", {{"ends_after", 1}, {"results", results_of("early-", 12)}}},
        {"msgbatch_late", {{"ends_after", 4}, {"results", results_of("late-", 9)}}}}},
      {"faults", Json::array({{{"status", 429}, {"retry_after", 1}}, {{"status", 500}}, {{"status", 529}}})},
      {"drop_after", {{"msgbatch_late", 5}}}};  // the first download of late's results breaks off
  scenario["batches"]["msgbatch_late"]["results"].push_back(
      {{"custom_id", "late-extra"}, {"type", "succeeded"}, {"text", "not in the table"}, {"unlisted", true}});
  BatchMonitor m(scenario);

  FlowrunProcess monitor(m.args({"--every", "200ms"}), m.env);
  REQUIRE(flowrun::test::wait_for_file(m.dir.file("state/locks/batch_results.lock")));
  std::this_thread::sleep_for(100ms);
  CliResult second = run_flowrun(m.args({"--every", "200ms"}), m.env);
  CHECK(second.exit_code == 2);
  CHECK(second.err.find("another monitor of batch_results is running (pid " + std::to_string(monitor.pid())) !=
        std::string::npos);

  const bool finished = m.wait_until([&] { return m.count("SELECT count(*) FROM batches WHERE status = 'submitted'") == 0; });
  std::this_thread::sleep_for(500ms);  // a few more ticks: they must find nothing left to do
  monitor.signal(SIGTERM);
  CliResult r = monitor.wait();
  INFO(r.err);
  REQUIRE(finished);
  CHECK(r.exit_code == 0);
  CHECK(r.err.find("stopped after") != std::string::npos);

  // Every result written exactly once, the broken-off download rolled back with its batch.
  CHECK(m.count("SELECT count(*) FROM audit") == 12 + 10);
  CHECK(m.query("SELECT custom_id FROM audit GROUP BY custom_id HAVING count(*) > 1").empty());
  CHECK(m.count("SELECT count(*) FROM audit WHERE what = 'insert'") == 1);  // late-extra, kept
  CHECK(m.count("SELECT count(*) FROM requests WHERE status = 'pending'") == 0);
  CHECK(m.query("SELECT status, count(*) AS n FROM requests GROUP BY status ORDER BY status") ==
        std::vector<Json>{{{"status", "canceled"}, {"n", 5}},
                          {{"status", "errored"}, {"n", 5}},
                          {{"status", "expired"}, {"n", 5}},
                          {{"status", "succeeded"}, {"n", 7}}});
  CHECK(m.query("SELECT value FROM requests WHERE custom_id = 'early-8'")[0]["value"] == "{\"label\":\"cat\",\"n\":8}");
  CHECK(m.query("SELECT output, value FROM requests WHERE custom_id = 'early-4'")[0] ==
        Json{{"output", "plain text"}, {"value", nullptr}});
  CHECK(m.query("SELECT error FROM requests WHERE custom_id = 'late-1'")[0]["error"] ==
        "invalid_request_error: prompt is too long");
  CHECK(Json::parse(m.query("SELECT counts FROM batches WHERE id = 'msgbatch_late'")[0]["counts"].get<std::string>()) ==
        Json{{"succeeded", 4}, {"errored", 2}, {"canceled", 2}, {"expired", 2}, {"unlisted", 1}});

  Json stats = m.stats();
  CHECK(stats["faults_served"] == 3);
  CHECK(stats["downloads"]["msgbatch_early"] == 1);
  CHECK(stats["downloads"]["msgbatch_late"] == 2);  // the broken one and the one that counted
  const std::string log = m.dir.read("monitor.log");
  CHECK(log.find("server's Retry-After") != std::string::npos);
  CHECK(log.find("batch msgbatch_early: stored 12 result(s): 3 succeeded, 3 errored, 3 canceled, 3 expired") !=
        std::string::npos);
  CHECK(log.find(kApiKey) == std::string::npos);
  CHECK(r.err.find(kApiKey) == std::string::npos);
}

TEST_CASE("batch_results: killed while writing a batch, the database holds each result once after restart",
          "[e2e][batch][durable]") {
  Json scenario = {{"api_key", kApiKey},
                   {"batches", {{"msgbatch_slow", {{"ends_after", 0}, {"results", results_of("slow-", 40)}}}}},
                   {"line_delay", 0.05}};
  BatchMonitor m(scenario);
  {
    FlowrunProcess monitor(m.args({"--once"}), m.env);
    REQUIRE(m.wait_until([&] { return m.stats()["lines_sent"].value("msgbatch_slow", 0) >= 10; }));
    monitor.signal(SIGKILL);
    CHECK(monitor.wait().exit_code == 128 + SIGKILL);
  }
  // Nothing half-written: the batch is still submitted and no row moved.
  CHECK(m.query("SELECT status FROM batches")[0]["status"] == "submitted");
  CHECK(m.count("SELECT count(*) FROM requests WHERE status != 'pending'") == 0);
  CHECK(m.count("SELECT count(*) FROM audit") == 0);

  // The kernel dropped the dead monitor's lock: the next one starts and finishes the batch.
  CliResult again = run_flowrun(m.args({"--once"}), m.env);
  INFO(again.err);
  CHECK(again.exit_code == 0);
  CHECK(m.query("SELECT status FROM batches")[0]["status"] == "completed");
  CHECK(m.count("SELECT count(*) FROM audit") == 40);
  CHECK(m.query("SELECT custom_id FROM audit GROUP BY custom_id HAVING count(*) > 1").empty());
  CHECK(m.count("SELECT count(*) FROM requests WHERE status = 'pending'") == 0);

  // And a tick after that finds nothing to do.
  CliResult third = run_flowrun(m.args({"--once"}), m.env);
  CHECK(third.exit_code == 0);
  CHECK(m.count("SELECT count(*) FROM audit") == 40);
}

TEST_CASE("faults: the batch monitor SIGKILLed at random moments, restarted each time: every result written once",
          "[e2e][batch][faults][durable]") {
  const unsigned seed = static_cast<unsigned>(std::random_device{}());
  INFO("seed " << seed << " (the kill times come from it)");
  std::mt19937 random(seed);
  Json scenario = {{"api_key", kApiKey},
                   {"batches",
                    {{"msgbatch_a", {{"ends_after", 0}, {"results", results_of("a-", 30)}}},
                     {"msgbatch_b", {{"ends_after", 1}, {"results", results_of("b-", 30)}}},
                     {"msgbatch_c", {{"ends_after", 2}, {"results", results_of("c-", 30)}}}}},
                   {"line_delay", 0.01},  // a download takes ~0.3 s: kills land mid-stream too
                   {"faults", Json::array({{{"status", 500}}, {{"status", 429}, {"retry_after", 1}}})}};
  BatchMonitor m(scenario);
  auto all_done = [&] { return m.count("SELECT count(*) FROM batches WHERE status = 'submitted'") == 0; };
  int kills = 0;
  for (int round = 0; round < 6 && !all_done(); ++round) {
    FlowrunProcess monitor(m.args({"--every", "100ms"}), m.env);
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(150, 1200)(random)));
    monitor.signal(SIGKILL);
    monitor.wait();
    ++kills;
  }
  // The last monitor runs until everything is stored, then stops politely.
  FlowrunProcess monitor(m.args({"--every", "100ms"}), m.env);
  const bool finished = m.wait_until(all_done);
  std::this_thread::sleep_for(500ms);  // a few more ticks: they must find nothing left to do
  monitor.signal(SIGTERM);
  CliResult r = monitor.wait();
  INFO(kills << " kills; last monitor's output:\n" << r.err);
  REQUIRE(finished);
  CHECK(r.exit_code == 0);
  CHECK(m.count("SELECT count(*) FROM audit") == 90);
  CHECK(m.query("SELECT custom_id FROM audit GROUP BY custom_id HAVING count(*) > 1").empty());
  CHECK(m.count("SELECT count(*) FROM requests WHERE status = 'pending'") == 0);
  CHECK(m.count("SELECT count(*) FROM batches WHERE status = 'completed'") == 3);
}

TEST_CASE("batch_results: a wrong API key fails the tick with the API's message, and the next tick still runs",
          "[e2e][batch]") {
  Json scenario = {{"api_key", "the-right-key"},
                   {"batches", {{"msgbatch_x", {{"ends_after", 0}, {"results", results_of("x-", 2)}}}}}};
  BatchMonitor m(scenario);
  FlowrunProcess monitor(m.args({"--every", "100ms"}), m.env);
  REQUIRE(m.wait_until([&] { return m.dir.read("monitor.log").find("tick 2 ") != std::string::npos; }, 20s));
  monitor.signal(SIGTERM);
  CliResult r = monitor.wait();
  CHECK(r.exit_code == 0);
  const std::string log = m.dir.read("monitor.log");
  CHECK(log.find("HTTP 401") != std::string::npos);
  CHECK(log.find("authentication_error") != std::string::npos);
  CHECK(log.find("the next tick runs as scheduled") != std::string::npos);
  CHECK(m.count("SELECT count(*) FROM audit") == 0);
}
