// End-to-end: the shipped workflows/batch_results.yaml, run by the real binary on a schedule
// against the Message Batches simulator (tools/sim/batch_sim.py), writing into SQLite. An audit
// trigger the test adds records every write to `requests`, so "exactly once" is counted, not
// assumed. Results are written in chunks of `chunk_rows`: a kill between chunks leaves some
// committed and the batch `submitted`, and the restart rewrites those rows idempotently. So
// "exactly once" here means, precisely: every custom_id's row holds its result's values, no
// result is missing, no row is doubled (one row per custom_id), the batch is completed once; a
// row is written more than once only if it was in a chunk committed before a kill, and then
// exactly once more per kill that left it so.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <random>
#include <set>
#include <thread>

#include "engine/io/sqlite_db.h"
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
    env = {{"FLOWRUN_STATE_DIR", dir.file("state")}, {"ANTHROPIC_API_KEY", kApiKey}, {"ANTHROPIC_BASE_URL", sim.url()}};
    CliResult setup = run_flowrun(
        {std::string(FLOWRUN_SOURCE_DIR) + "/workflows/batch_results_setup.yaml", "--set", "database=" + db_path()},
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
      for (const auto& r : batch.value("results", Json::array()))
        if (!r.value("unlisted", false))
          db.query("INSERT INTO requests (custom_id, batch_id) VALUES (?, ?)", {r["custom_id"], id});
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

  // Rows of `requests` whose values differ from what results_of() put in the batch (or are missing).
  int64_t wrong_rows(const std::string& prefix, int n) const {
    int64_t wrong = 0;
    const Json expected = results_of(prefix, n);
    for (const auto& r : expected) {
      auto rows = query("SELECT status, output, error FROM requests WHERE custom_id = '" +
                        r["custom_id"].get<std::string>() + "'");
      if (rows.size() != 1 || rows[0]["status"] != r["type"] ||
          (r.contains("text") && rows[0]["output"] != r["text"]) ||
          (r["type"] == "errored" && rows[0]["error"] != "invalid_request_error: prompt is too long"))
        ++wrong;
    }
    return wrong;
  }

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

TEST_CASE("batch_results --every: both batches stored exactly once through 429s and 500s, a second monitor refuses",
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

  const bool finished =
      m.wait_until([&] { return m.count("SELECT count(*) FROM batches WHERE status = 'submitted'") == 0; });
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
        Json{{"succeeded", 4}, {"errored", 2}, {"canceled", 2}, {"expired", 2}});

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
  // While late ran, each tick showed its request_counts (10 results, 1/5 more processed per retrieve).
  CHECK(log.find("batch msgbatch_late in_progress: 2 processed, 8 remaining (1 succeeded, 1 errored, 0 canceled, 0 "
                 "expired)") != std::string::npos);
  CHECK(log.find("batch msgbatch_late in_progress: 4 processed, 6 remaining (") != std::string::npos);
  CHECK(log.find("still running (4 processed, 6 remaining)") != std::string::npos);
}

TEST_CASE("batch_results: killed while writing a batch in chunks, the restart rewrites the committed chunks once",
          "[e2e][batch][durable]") {
  Json scenario = {{"api_key", kApiKey},
                   {"batches", {{"msgbatch_slow", {{"ends_after", 0}, {"results", results_of("slow-", 40)}}}}},
                   {"line_delay", 0.05}};
  BatchMonitor m(scenario);
  const std::vector<std::string> chunked = {"--once", "--set", "chunk_rows=8"};
  {
    FlowrunProcess monitor(m.args(chunked), m.env);
    REQUIRE(m.wait_until([&] { return m.stats()["lines_sent"].value("msgbatch_slow", 0) >= 20; }));
    monitor.signal(SIGKILL);
    CHECK(monitor.wait().exit_code == 128 + SIGKILL);
  }
  // Whole chunks committed, none half-written; the batch is still submitted.
  CHECK(m.query("SELECT status FROM batches")[0]["status"] == "submitted");
  const int64_t committed = m.count("SELECT count(*) FROM requests WHERE status != 'pending'");
  INFO(committed << " row(s) committed before the kill");
  CHECK(committed >= 8);
  CHECK(committed < 40);
  CHECK(committed % 8 == 0);
  CHECK(m.count("SELECT count(*) FROM audit") == committed);
  std::set<std::string> before;
  for (const auto& row : m.query("SELECT custom_id FROM audit")) before.insert(row["custom_id"].get<std::string>());

  // The kernel dropped the dead monitor's lock: the next one starts and finishes the batch.
  CliResult again = run_flowrun(m.args(chunked), m.env);
  INFO(again.err);
  CHECK(again.exit_code == 0);
  CHECK(m.query("SELECT status FROM batches")[0]["status"] == "completed");
  CHECK(m.count("SELECT count(*) FROM requests") == 40);
  CHECK(m.wrong_rows("slow-", 40) == 0);
  // Written once, plus exactly one rewrite for each row of a chunk committed before the kill.
  CHECK(m.count("SELECT count(*) FROM audit") == 40 + committed);
  for (const auto& row : m.query("SELECT custom_id, count(*) AS n FROM audit GROUP BY custom_id")) {
    INFO(row.dump());
    CHECK(row["n"] == (before.count(row["custom_id"].get<std::string>()) ? 2 : 1));
  }
  CHECK(m.count("SELECT count(DISTINCT custom_id) FROM audit") == 40);

  // And a tick after that finds nothing to do.
  CliResult third = run_flowrun(m.args(chunked), m.env);
  CHECK(third.exit_code == 0);
  CHECK(m.count("SELECT count(*) FROM audit") == 40 + committed);
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
    FlowrunProcess monitor(m.args({"--every", "100ms", "--set", "chunk_rows=7"}), m.env);
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(150, 1200)(random)));
    monitor.signal(SIGKILL);
    monitor.wait();
    ++kills;
  }
  // The last monitor runs until everything is stored, then stops politely.
  FlowrunProcess monitor(m.args({"--every", "100ms", "--set", "chunk_rows=7"}), m.env);
  const bool finished = m.wait_until(all_done);
  std::this_thread::sleep_for(500ms);  // a few more ticks: they must find nothing left to do
  monitor.signal(SIGTERM);
  CliResult r = monitor.wait();
  INFO(kills << " kills; last monitor's output:\n" << r.err);
  REQUIRE(finished);
  CHECK(r.exit_code == 0);
  // A kill may leave chunks committed that a later tick rewrites (at most once per kill), but
  // no result is missing, none doubled, every value right.
  CHECK(m.count("SELECT count(DISTINCT custom_id) FROM audit") == 90);
  CHECK(m.count("SELECT count(*) FROM audit") <= 90 * (1 + kills));
  CHECK(m.count("SELECT count(*) FROM requests") == 90);
  CHECK(m.count("SELECT count(*) FROM requests WHERE status = 'pending'") == 0);
  CHECK(m.wrong_rows("a-", 30) + m.wrong_rows("b-", 30) + m.wrong_rows("c-", 30) == 0);
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

// The original monitor's users scored news articles and reddit posts: their result_sql writes the
// sentiment a JSON-answering model gave straight into their own tables, while their application
// keeps writing to the same database file.
TEST_CASE(
    "batch_results: result_sql writes 2 x 20,000 results into the user's tables, a concurrent writer never waits 1 s",
    "[e2e][batch][result_sql]") {
  Json scenario = {
      {"api_key", kApiKey},
      {"batches",
       {{"msgbatch_news", {{"ends_after", 0}, {"generate", {{"prefix", "news-"}, {"count", 20000}}}}},
        {"msgbatch_reddit", {{"ends_after", 0}, {"generate", {{"prefix", "reddit-"}, {"count", 20000}}}}}}}};
  BatchMonitor m(scenario);
  {
    SqliteDb db(m.db_path(), false);
    db.exec(R"SQL(
      CREATE TABLE news_articles (id TEXT PRIMARY KEY, sentiment REAL, tokens INTEGER, error TEXT);
      CREATE TABLE reddit_posts (id TEXT PRIMARY KEY, sentiment REAL, tokens INTEGER, error TEXT);
      CREATE TABLE app_log (id INTEGER PRIMARY KEY, note TEXT);
      BEGIN;
      WITH RECURSIVE i(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM i WHERE n < 19999)
        INSERT INTO news_articles (id) SELECT 'news-' || n FROM i;
      WITH RECURSIVE i(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM i WHERE n < 19999)
        INSERT INTO reddit_posts (id) SELECT 'reddit-' || n FROM i;
      COMMIT;)SQL");
  }
  const std::string result_sql = R"SQL(
    UPDATE news_articles SET sentiment = json_extract(:text, '$.sentiment'),
      tokens = json_extract(:value, '$.message.usage.output_tokens'), error = :error
    WHERE id = :custom_id;
    UPDATE reddit_posts SET sentiment = json_extract(:text, '$.sentiment'),
      tokens = json_extract(:value, '$.message.usage.output_tokens'), error = :error
    WHERE id = :custom_id)SQL";

  // The user's application: a row every 50 ms on its own connection (busy timeout 5 s), timed.
  std::atomic<bool> stop{false};
  std::vector<double> waits;
  int failures = 0;
  std::thread writer([&] {
    SqliteDb app(m.db_path(), false);
    while (!stop) {
      std::this_thread::sleep_for(50ms);
      const auto start = std::chrono::steady_clock::now();
      try {
        app.query("INSERT INTO app_log (note) VALUES (?)", {"tick"});
      } catch (const flowrun::SqliteError&) {
        ++failures;
      }
      waits.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
  });
  const auto started = std::chrono::steady_clock::now();
  CliResult r = run_flowrun(m.args({"--once", "--set", "result_sql=" + result_sql}), m.env);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  stop = true;
  writer.join();
  const double worst = waits.empty() ? 0 : *std::max_element(waits.begin(), waits.end());
  INFO(r.err);
  INFO("run " << seconds << " s (" << 40000 / seconds << " results/s end to end); " << waits.size()
              << " concurrent writes, the slowest waited " << worst << " s");
  REQUIRE(r.exit_code == 0);
  CHECK(failures == 0);
  CHECK(waits.size() >= 5);
  CHECK(worst < 1.0);
  CHECK(m.count("SELECT count(*) FROM batches WHERE status = 'completed'") == 2);
  for (const std::string table : {"news_articles", "reddit_posts"}) {
    INFO(table);
    const std::string prefix = table == "news_articles" ? "news-" : "reddit-";
    const std::string n = "CAST(substr(id, " + std::to_string(prefix.size() + 1) + ") AS INTEGER)";
    CHECK(m.count("SELECT count(*) FROM " + table) == 20000);
    // Every 97th result errored (sentiment NULL, the error kept), the others carry ((n % 201) - 100) / 100.
    CHECK(m.count("SELECT count(*) FROM " + table + " WHERE " + n +
                  " % 97 = 96 AND sentiment IS NULL AND error = "
                  "'invalid_request_error: overloaded'") == 206);
    CHECK(m.count("SELECT count(*) FROM " + table + " WHERE " + n +
                  " % 97 != 96 AND error IS NULL AND tokens = 7 AND "
                  "abs(sentiment - ((" +
                  n + " % 201) - 100) / 100.0) < 1e-9") == 20000 - 206);
  }
  CHECK(m.count("SELECT count(*) FROM app_log") == static_cast<int64_t>(waits.size()));
  const std::string log = m.dir.read("monitor.log");
  CHECK(log.find("batch msgbatch_news: stored 20000 result(s): 19794 succeeded, 206 errored, 0 canceled, 0 expired "
                 "(21 transaction(s) of up to 1000 rows, 20000 row(s) changed") != std::string::npos);
  CHECK(log.find("batch msgbatch_news: 10,000 of 20,000 result(s) written") != std::string::npos);
}

TEST_CASE("batch_results: a result_sql naming an unknown parameter fails before any download",
          "[e2e][batch][result_sql]") {
  Json scenario = {{"api_key", kApiKey},
                   {"batches", {{"msgbatch_x", {{"ends_after", 0}, {"results", results_of("x-", 4)}}}}}};
  BatchMonitor m(scenario);
  CliResult r = run_flowrun(
      m.args({"--once", "--set", "result_sql=UPDATE requests SET status = :status WHERE custom_id = :custom_ic"}),
      m.env);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("uses :custom_ic, which is not one of its parameters (:custom_id, :batch_id") != std::string::npos);
  CHECK(m.stats()["downloads"].value("msgbatch_x", 0) == 0);
  CHECK(m.query("SELECT status FROM batches")[0]["status"] == "submitted");
  CHECK(m.count("SELECT count(*) FROM audit") == 0);
}

TEST_CASE("batch_results: a database held by another writer past the 5 s busy timeout is retried, not failed",
          "[e2e][batch][busy]") {
  Json scenario = {{"api_key", kApiKey},
                   {"batches", {{"msgbatch_x", {{"ends_after", 0}, {"results", results_of("x-", 6)}}}}}};
  BatchMonitor m(scenario);
  std::atomic<bool> holding{false};
  std::thread holder([&] {  // someone else's long write transaction: 6.5 s
    SqliteDb other(m.db_path(), false);
    other.exec("BEGIN IMMEDIATE");
    holding = true;
    std::this_thread::sleep_for(6500ms);
    other.exec("COMMIT");
  });
  while (!holding) std::this_thread::sleep_for(10ms);
  CliResult r = run_flowrun(m.args({"--once"}), m.env);
  holder.join();
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.err.find("another connection holds the database") != std::string::npos);
  CHECK(m.query("SELECT status FROM batches")[0]["status"] == "completed");
  CHECK(m.count("SELECT count(*) FROM audit") == 6);
  CHECK(m.wrong_rows("x-", 6) == 0);
}
