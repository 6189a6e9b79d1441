#include "engine/journal/journal.h"

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "engine/io/fiber_scheduler.h"
#include "engine/io/redactor.h"
#include "engine/io/sqlite_db.h"
#include "support/harness.h"
#include "support/sim_server.h"

using namespace flowrun;
using flowrun::test::Harness;
using flowrun::test::LambdaStep;
using flowrun::test::TempDir;
using namespace std::chrono_literals;

namespace {
RunRow new_run(const std::string& id) {
  RunRow r;
  r.id = id;
  r.workflow_path = "/w.yaml";
  r.workflow_name = "w";
  r.content_hash = content_hash("text");
  r.inputs = {{"n", 1}};
  r.status = "running";
  r.started_ms = wall_clock_ms();
  return r;
}
}  // namespace

TEST_CASE("journal: runs round-trip and list newest first", "[journal]") {
  TempDir dir;
  auto j = Journal::open(dir.file("state"));
  RunRow a = new_run("a");
  j->create_run(a);
  RunRow b = new_run("b");
  b.started_ms += 10;
  j->create_run(b);
  auto runs = j->recent_runs(10);
  REQUIRE(runs.size() == 2);
  CHECK(runs[0].id == "b");
  CHECK(runs[1].inputs == Json({{"n", 1}}));
  j->set_run_status("a", "failed", "boom");
  CHECK(j->run("a")->status == "failed");
  CHECK(j->run("a")->error == "boom");
  CHECK_FALSE(j->run("zzz"));
  // Reopening reads the same file.
  j.reset();
  CHECK(Journal::open(dir.file("state"))->recent_runs(10).size() == 2);
}

TEST_CASE("journal: one owner, a dead owner on this host or an expired lease is taken over", "[journal]") {
  TempDir dir;
  auto j = Journal::open(dir.file("state"));
  j->create_run(new_run("r"));
  CHECK(j->try_acquire("r", getpid(), this_host(), 30'000).taken);
  CHECK(j->try_acquire("r", getpid(), this_host(), 30'000).taken);  // the owner again: fine
  // pid 1 is alive on this host: refused, and told who holds it.
  j->release("r", getpid());
  CHECK(j->try_acquire("r", 1, this_host(), 30'000).taken);
  const Journal::Claim refused = j->try_acquire("r", getpid(), this_host(), 30'000);
  CHECK_FALSE(refused.taken);
  CHECK(refused.holder == "pid 1 on " + this_host());
  // Another host's owner is trusted until its lease runs out.
  j->release("r", 1);
  CHECK(j->try_acquire("r", 4242, "elsewhere", 30'000).taken);
  CHECK_FALSE(j->try_acquire("r", getpid(), this_host(), 30'000).taken);
  j->release("r", 4242);
  CHECK(j->try_acquire("r", 4242, "elsewhere", -1).taken);  // a lease already expired
  CHECK(j->try_acquire("r", getpid(), this_host(), 30'000).taken);
  // A process of this host that no longer exists: taken over at once.
  pid_t child = fork();
  if (child == 0) _exit(0);
  int status = 0;
  waitpid(child, &status, 0);
  j->release("r", getpid());
  CHECK(j->try_acquire("r", child, this_host(), 30'000).taken);
  CHECK(j->try_acquire("r", getpid(), this_host(), 30'000).taken);
}

TEST_CASE("journal: step outputs and errors are stored with secrets redacted", "[journal][secrets]") {
  TempDir dir;
  auto j = Journal::open(dir.file("state"));
  j->create_run(new_run("r"));
  Redactor redactor;
  redactor.add_secret("tok-123456");
  auto rec = j->recorder("r", redactor);
  rec->step_started("a", 1);
  rec->step_finished("a", "failed", 2, {{"header", "Bearer tok-123456"}}, "transient", "denied for tok-123456",
                     flowrun::Durability::kNow);
  rec->event("a", "retry", "using tok-123456", {{"url", "https://x/?k=tok-123456"}});
  auto steps = j->steps("r");
  REQUIRE(steps.size() == 1);
  CHECK(steps[0]["outputs"] == "{\"header\":\"Bearer ***\"}");
  CHECK(steps[0]["error"] == "denied for ***");
  CHECK(j->events("r")[0]["message"] == "using ***");
  CHECK(j->events("r")[0]["data"] == "{\"url\":\"https://x/?k=***\"}");
  auto recorded = rec->recorded("a");
  REQUIRE(recorded);
  CHECK(recorded->attempts == 2);
  CHECK(rec->started_under("a"));
  rec->step_started("loop[3].job", 1);
  CHECK(rec->started_under("loop[3]"));
  CHECK(rec->started_under("loop"));
  CHECK_FALSE(rec->started_under("loop[31]"));
  CHECK_FALSE(rec->started_under("lo"));
}

TEST_CASE("journal: side-effect-free records wait for the next durable write and keep their order", "[journal]") {
  TempDir dir;
  auto j = Journal::open(dir.file("state"));
  j->create_run(new_run("r"));
  Redactor redactor;
  auto rec = j->recorder("r", redactor);
  rec->step_finished("a", "succeeded", 1, {{"v", 1}}, "", "", Durability::kWithNextWrite);
  rec->step_finished("b", "skipped", 0, Json::object(), "", "", Durability::kWithNextWrite);
  // What this process knows at once; another process (a second connection) does not see it yet.
  CHECK(rec->recorded("a")->outputs == Json{{"v", 1}});
  CHECK(rec->started_under("b"));
  auto other = Journal::open(dir.file("state"));
  auto count_rows = [&] {
    SqliteDb db(dir.file("state/journal.db"), false);
    return db.query("SELECT COUNT(*) AS n FROM steps WHERE run_id = 'r'")[0]["n"].get<int64_t>();
  };
  CHECK(count_rows() == 0);

  rec->step_started("c", 1);  // has side effects: commits a and b with it
  CHECK(count_rows() == 3);
  auto steps = other->steps("r");
  REQUIRE(steps.size() == 3);
  CHECK(steps[0]["path"] == "a");
  CHECK(steps[1]["path"] == "b");
  CHECK(steps[2]["path"] == "c");
  CHECK(steps[2]["status"] == "running");

  rec->step_finished("d", "succeeded", 1, Json::object(), "", "", Durability::kWithNextWrite);
  j->set_run_status("r", "succeeded");  // ending the run commits what waits
  CHECK(count_rows() == 4);

  // A resumed process reads what the first one wrote, and numbers new rows after it.
  auto resumed = j->recorder("r", redactor);
  CHECK(resumed->recorded("a")->status == "succeeded");
  CHECK(resumed->started_under("c"));
  CHECK_FALSE(resumed->started_under("e"));
  resumed->step_finished("e", "succeeded", 1, Json::object(), "", "", Durability::kNow);
  CHECK(other->steps("r").back()["path"] == "e");
  CHECK(other->steps("r").back()["seq"] == 5);
}

TEST_CASE("journal: durable records from many fibers share commits, and a failed commit reaches each", "[journal]") {
  TempDir dir;
  auto j = Journal::open(dir.file("state"));
  j->create_run(new_run("r"));
  Redactor redactor;
  auto rec = j->recorder("r", redactor);
  SqliteDb other(dir.file("state/journal.db"), false);  // another process's view
  auto on_disk = [&](const std::string& path) {
    return other.query("SELECT COUNT(*) AS n FROM steps WHERE run_id = 'r' AND path = ?", {path})[0]["n"]
        .get<int64_t>();
  };
  RealClock clock;
  const uint64_t before = j->commits();
  int durable = 0;
  run_concurrently(
      1000,
      [&](size_t i) {
        const std::string path = "item[" + std::to_string(i) + "]";
        rec->step_started(path, 0);
        durable += on_disk(path) == 1;  // on disk when step_started returned
      },
      clock);
  CHECK(durable == 1000);
  CHECK(j->commits() - before <= 100);  // was one each: 1,000

  // A commit that fails fails for everyone waiting on it; the rows wait for the next one.
  other.exec(
      "CREATE TRIGGER refuse BEFORE INSERT ON steps WHEN NEW.path = 'boom' "
      "BEGIN SELECT RAISE(ABORT, 'refused'); END");
  int failed = 0;
  run_concurrently(
      50,
      [&](size_t i) {
        try {
          rec->step_started(i == 0 ? "boom" : "after[" + std::to_string(i) + "]", 0);
        } catch (const std::exception& e) {
          failed += std::string(e.what()).find("refused") != std::string::npos;
        }
      },
      clock);
  CHECK(failed == 50);
  CHECK(on_disk("after[1]") == 0);
  other.exec("DROP TRIGGER refuse");
  rec->step_started("next", 0);
  CHECK(on_disk("boom") == 1);
  CHECK(on_disk("after[49]") == 1);
}

TEST_CASE("journal: records waiting when the process ends are committed by the journal's destructor", "[journal]") {
  TempDir dir;
  {
    auto j = Journal::open(dir.file("state"));
    j->create_run(new_run("r"));
    Redactor redactor;
    auto rec = j->recorder("r", redactor);
    rec->step_finished("a", "succeeded", 1, Json::object(), "", "", Durability::kWithNextWrite);
  }
  auto j = Journal::open(dir.file("state"));
  CHECK(j->steps("r").size() == 1);
}

TEST_CASE("a step's timeout runs from its first start, across a resume", "[journal][policy]") {
  TempDir dir;
  auto j = Journal::open(dir.file("state"));
  j->create_run(new_run("r"));
  Redactor redactor;
  Harness h;
  h.registry.add(std::make_unique<LambdaStep>("slow", [](StepContext& ctx) -> Json {
    ctx.sleep(20s);
    return {};
  }));
  REQUIRE(h.load("steps:\n  - {id: a, type: slow, timeout: 1m}\n") == "");
  // An earlier process started the step 50 s ago (wall clock): 10 s are left, not 60.
  j->recorder("r", redactor)->step_started("a", 1);
  SqliteDb db(dir.file("state/journal.db"), false);
  db.query("UPDATE steps SET started_ms = started_ms - 50000 WHERE path = 'a'");
  auto rec = j->recorder("r", redactor);  // the resuming process
  ExecutorOptions options;
  options.recorder = rec.get();
  RunResult r = h.run(Json::object(), options);
  CHECK(r.status == RunState::kFailed);
  CHECK(r.error.find("timed out after 1m") == 0);
  REQUIRE(h.virtual_clock.sleeps().size() == 1);
  CHECK(h.virtual_clock.sleeps()[0] <= Duration(10s));
  CHECK(h.virtual_clock.sleeps()[0] >= Duration(9s));
}
