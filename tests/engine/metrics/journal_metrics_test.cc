#include "engine/metrics/journal_metrics.h"

#include <prometheus/registry.h>

#include <catch2/catch.hpp>

#include "engine/io/redactor.h"
#include "engine/io/sqlite_db.h"
#include "engine/journal/journal.h"
#include "engine/metrics/run_metrics.h"
#include "support/exposition.h"
#include "support/sim_server.h"

using namespace flowrun;
using flowrun::test::Exposition;
using flowrun::test::parse_exposition;
using flowrun::test::TempDir;

namespace {

constexpr int64_t kHourMs = 3'600'000;

void add_run(Journal& journal, const std::string& id, const std::string& workflow, const std::string& status) {
  RunRow row;
  row.id = id;
  row.workflow_path = "/x/" + workflow + ".yaml";
  row.workflow_name = workflow;
  row.content_hash = "0";
  row.status = "running";
  row.started_ms = wall_clock_ms();
  journal.create_run(row);
  if (status != "running") journal.set_run_status(id, status);
}

// The outbox as engine/notify creates it (docs: the common brief's schema).
void add_outbox(SqliteDb& db) {
  db.exec(R"SQL(CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, delivery_key TEXT NOT NULL UNIQUE,
    run_id TEXT NOT NULL, channel TEXT NOT NULL, event TEXT NOT NULL, path TEXT NOT NULL,
    payload TEXT NOT NULL, target TEXT NOT NULL, status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_ms INTEGER NOT NULL, last_error TEXT NOT NULL DEFAULT '',
    created_ms INTEGER NOT NULL, sent_ms INTEGER NOT NULL DEFAULT 0))SQL");
  int n = 0;
  for (const auto& [channel, status] : std::vector<std::pair<std::string, std::string>>{{"webhook", "sent"},
                                                                                        {"webhook", "sent"},
                                                                                        {"webhook", "failed"},
                                                                                        {"slack", "pending"},
                                                                                        {"email", "suppressed"}})
    db.query(
        "INSERT INTO outbox (delivery_key, run_id, channel, event, path, payload, target, status, next_ms, "
        "created_ms) VALUES (?, 'r2', ?, 'item_failed', 'videos', '{}', 'https://hooks.example/SECRET', ?, 0, 0)",
        Json::array({"k" + std::to_string(n++), channel, status}));
}

}  // namespace

TEST_CASE("journal_exposition: runs, items, retries, stalls, instances and notifications from the journal",
          "[metrics][journal]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("state"));
  const int64_t now = wall_clock_ms();
  add_run(*journal, "r1", "wf", "succeeded");
  add_run(*journal, "r2", "wf", "partial");
  add_run(*journal, "r3", "other", "running");
  add_run(*journal, "r4", "wf", "failed");
  Redactor redactor;
  {
    auto r2 = journal->recorder("r2", redactor);
    r2->event("videos[0].job", "retry", "attempt 1/3 failed", Json{{"error_kind", "exit:3"}, {"type", "exec"}});
    r2->event("videos[1].job", "retry", "attempt 1/3 failed", Json{{"error_kind", "exit:3"}, {"type", "exec"}});
    r2->event("videos[1].job", "failed", "attempt 3/3 failed", Json{{"error_kind", "exit:5"}, {"type", "exec"}});
    r2->event("videos[2].fetch", "timeout", "timed out", Json{{"error_kind", "timeout"}, {"type", "http"}});
    r2->event("old", "retry", "from before the data had a type", Json());
    r2->event("videos", "item_succeeded", "", Json{{"item", "a"}});
    r2->event("videos", "item_succeeded", "", Json{{"item", "b"}});
    r2->event("videos", "item_failed", "", Json{{"item", "c"}, {"error", "boom"}});
    r2->event("videos[0].watch", "stalled", "", Json{{"stalls", 1}});
    r2->event("videos[0].watch", "recovered", "", Json{{"after_s", 12}});
    r2->event("videos[0].watch", "restart_loop", "", Json());
    r2->event("videos[0].provision", "instance_started", "", Json{{"instance", "i-1"}, {"price_per_hour", 3.0}});
    r2->event("videos[0].destroy", "instance_destroyed", "", Json{{"instance", "i-1"}});
    auto r3 = journal->recorder("r3", redactor);
    r3->event("gpu.provision", "instance_started", "", Json{{"instance", "i-2"}, {"price_per_hour", 1.0}});
    auto r4 = journal->recorder("r4", redactor);
    r4->event("gpu.provision", "instance_started", "", Json{{"instance", "i-3"}, {"price_per_hour", 10}});
  }
  {
    // Times a test can reason about: i-1 up two hours, i-2 one hour so far, i-3 half an hour
    // before its (failed) run's last update.
    SqliteDb db(journal->path(), false);
    db.query("UPDATE events SET at_ms = ? WHERE kind = 'instance_started' AND run_id = 'r2'",
             Json::array({now - 5 * kHourMs}));
    db.query("UPDATE events SET at_ms = ? WHERE kind = 'instance_destroyed' AND run_id = 'r2'",
             Json::array({now - 3 * kHourMs}));
    db.query("UPDATE events SET at_ms = ? WHERE run_id = 'r3'", Json::array({now - kHourMs}));
    db.query("UPDATE events SET at_ms = ? WHERE run_id = 'r4'", Json::array({now - 2 * kHourMs}));
    db.query("UPDATE runs SET updated_ms = ? WHERE id = 'r4'", Json::array({now - 2 * kHourMs + kHourMs / 2}));
    add_outbox(db);
  }

  const std::string text = journal_exposition(*journal, now);
  INFO(text);
  const Exposition e = parse_exposition(text);
  CHECK(e.errors.empty());
  for (const auto& error : e.errors) UNSCOPED_INFO(error);
  CHECK(e.value("flowrun_runs_total", {{"workflow", "wf"}, {"outcome", "succeeded"}}) == 1);
  CHECK(e.value("flowrun_runs_total", {{"workflow", "wf"}, {"outcome", "partial"}}) == 1);
  CHECK(e.value("flowrun_runs_total", {{"workflow", "wf"}, {"outcome", "failed"}}) == 1);
  CHECK(e.value("flowrun_runs_total", {{"workflow", "other"}, {"outcome", "running"}}) == -1);
  CHECK(e.value("flowrun_items_total", {{"outcome", "succeeded"}}) == 2);
  CHECK(e.value("flowrun_items_total", {{"outcome", "failed"}}) == 1);
  CHECK(e.value("flowrun_step_retries_total", {{"type", "exec"}, {"error_kind", "exit:3"}}) == 2);
  CHECK(e.value("flowrun_step_retries_total", {{"type", "unknown"}, {"error_kind", "unknown"}}) == 1);
  CHECK(e.value("flowrun_step_failures_total", {{"type", "exec"}, {"error_kind", "exit:5"}}) == 1);
  CHECK(e.value("flowrun_step_failures_total", {{"type", "http"}, {"error_kind", "timeout"}}) == 1);
  CHECK(e.value("flowrun_stalls_total") == 1);
  CHECK(e.value("flowrun_stall_recoveries_total") == 1);
  CHECK(e.value("flowrun_restart_loops_total") == 1);
  CHECK(e.value("flowrun_instances_running") == 1);
  CHECK(e.value("flowrun_instance_hours_total") == Approx(3.5));
  CHECK(e.value("flowrun_instance_cost_dollars_total") == Approx(2 * 3.0 + 1 * 1.0 + 0.5 * 10));
  CHECK(e.value("flowrun_notifications_total", {{"channel", "webhook"}, {"outcome", "sent"}}) == 2);
  CHECK(e.value("flowrun_notifications_total", {{"channel", "webhook"}, {"outcome", "failed"}}) == 1);
  CHECK(e.value("flowrun_notifications_total", {{"channel", "slack"}, {"outcome", "pending"}}) == 1);
  CHECK(e.value("flowrun_notifications_total", {{"channel", "email"}, {"outcome", "suppressed"}}) == 1);
  CHECK(e.types.at("flowrun_instances_running") == "gauge");
  CHECK(e.types.at("flowrun_runs_total") == "counter");
  // Nothing of an item, an error message or a channel's target reaches the page.
  for (const char* leak : {"SECRET", "boom", "videos", "i-1"}) CHECK(text.find(leak) == std::string::npos);
}

TEST_CASE("journal_exposition: an empty journal gives every family, valid, with zeros", "[metrics][journal]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("state"));
  const Exposition e = parse_exposition(journal_exposition(*journal, wall_clock_ms()));
  CHECK(e.errors.empty());
  CHECK(e.types.count("flowrun_runs_total") == 1);
  CHECK(e.types.count("flowrun_notifications_total") == 1);
  CHECK(e.value("flowrun_stalls_total") == 0);
  CHECK(e.value("flowrun_instances_running") == 0);
  CHECK(e.value("flowrun_instance_cost_dollars_total") == 0);
}

TEST_CASE("metrics_exposition: the journal's families and the registry's others, each family once",
          "[metrics][journal]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("state"));
  add_run(*journal, "r1", "wf", "succeeded");
  prometheus::Registry registry;
  RunMetrics metrics(registry);
  metrics.run_ended("wf", "succeeded");
  metrics.run_ended("wf", "succeeded");
  metrics.polled("http", 0.2, true);
  const std::string text = metrics_exposition(*journal, &registry, wall_clock_ms());
  INFO(text);
  const Exposition e = parse_exposition(text);
  CHECK(e.errors.empty());
  CHECK(e.value("flowrun_runs_total", {{"workflow", "wf"}, {"outcome", "succeeded"}}) == 1);  // the journal's
  CHECK(e.value("flowrun_polls_total", {{"type", "http"}, {"outcome", "ok"}}) == 1);          // the process's
  CHECK(e.value("flowrun_poll_duration_seconds_count", {{"type", "http"}}) == 1);
  CHECK(e.value("flowrun_poll_duration_seconds_bucket", {{"type", "http"}, {"le", "+Inf"}}) == 1);
  CHECK(parse_exposition(registry_exposition(registry))
            .value("flowrun_runs_total", {{"workflow", "wf"}, {"outcome", "succeeded"}}) == 2);
}

TEST_CASE("parse_exposition: the test's reader refuses what is not exposition format", "[metrics][journal]") {
  CHECK(parse_exposition("# TYPE a counter\na 1\n").errors.empty());
  CHECK(parse_exposition("# TYPE a counter\na{x=\"1\"} NaN\n").errors.empty());
  CHECK(!parse_exposition("a 1\n").errors.empty());                                      // no TYPE
  CHECK(!parse_exposition("# TYPE a counter\na one\n").errors.empty());                  // no float
  CHECK(!parse_exposition("# TYPE a counter\na{x=1} 1\n").errors.empty());               // unquoted
  CHECK(!parse_exposition("# TYPE a counter\na{x=\"1\" 1\n").errors.empty());            // unclosed
  CHECK(!parse_exposition("# TYPE a counter\n# TYPE a counter\na 1\n").errors.empty());  // twice
  CHECK(!parse_exposition("# TYPE a counter\na 1\na 2\n").errors.empty());               // same series
  CHECK(!parse_exposition("# TYPE a counter\na 1").errors.empty());                      // no final newline
}
