#include "engine/cli/scheduler.h"

#include <catch2/catch.hpp>

#include "engine/cli/service_unit.h"
#include "engine/journal/journal.h"
#include "engine/journal/monitor_lock.h"
#include "support/harness.h"
#include "support/sim_server.h"

using namespace flowrun;
using flowrun::test::TempDir;
using namespace std::chrono_literals;

TEST_CASE("schedule: ticks every period from each tick's start, in virtual time", "[schedule]") {
  VirtualClock clock;
  CancelToken stop;
  std::vector<TimePoint> starts;
  const std::vector<Duration> tick_takes = {10s, 70s, 20s, 200s, 5s};
  int ticks = run_on_schedule(60s, clock, stop, [&](int n) {
    starts.push_back(clock.now());
    clock.advance(tick_takes[n - 1]);
    if (n == 5) stop.cancel("SIGTERM");
  });
  CHECK(ticks == 5);
  REQUIRE(starts.size() == 5);
  CHECK(starts[1] - starts[0] == 60s);  // waited 50s after a 10s tick
  CHECK(starts[2] - starts[1] == 70s);  // overran: the next started at once
  CHECK(starts[3] - starts[2] == 60s);
  CHECK(starts[4] - starts[3] == 200s);  // the three periods it overlapped are skipped, not made up
  CHECK(clock.sleeps() == std::vector<Duration>{50s, 40s});
}

TEST_CASE("schedule: a stop while waiting ends the loop without another tick", "[schedule]") {
  RealClock clock;
  CancelToken stop;
  std::vector<Duration> waits;
  std::thread stopper([&] {
    std::this_thread::sleep_for(100ms);
    stop.cancel("SIGTERM");
  });
  const auto started = std::chrono::steady_clock::now();
  int ticks = run_on_schedule(
      1h, clock, stop, [](int) {}, [&](Duration d) { waits.push_back(d); });
  stopper.join();
  CHECK(ticks == 1);
  REQUIRE(waits.size() == 1);
  CHECK(waits[0] > 59min);
  CHECK(std::chrono::steady_clock::now() - started < 30s);
}

TEST_CASE("monitor lock: one holder at a time, and the next one is told who holds it", "[schedule][lock]") {
  TempDir dir;
  auto first = MonitorLock::try_acquire(dir.path(), "batch results");
  REQUIRE(first.lock);
  CHECK(first.holder.empty());
  CHECK(first.lock->path().filename() == "batch_results.lock");
  auto second = MonitorLock::try_acquire(dir.path(), "batch results");
  CHECK_FALSE(second.lock);
  CHECK(second.holder.rfind("pid " + std::to_string(::getpid()) + " on ", 0) == 0);
  CHECK(MonitorLock::try_acquire(dir.path(), "other").lock != nullptr);  // per workflow
  first.lock.reset();
  CHECK(MonitorLock::try_acquire(dir.path(), "batch results").lock != nullptr);
}

TEST_CASE("service unit: restarts always, runs in the project with its log file, quotes for systemd", "[schedule]") {
  ServiceUnitOptions o;
  o.flowrun_binary = "/usr/local/bin/flowrun";
  o.workflow_file = "/srv/my project/workflows/batch_results.yaml";
  o.workflow_name = "batch_results";
  o.working_directory = "/srv/my project";
  o.state_dir = "/srv/my project/.flowrun";
  o.log_file = "/var/log/flowrun/batch_results.log";
  o.environment_file = "/etc/flowrun/batch_results.env";
  o.sets = {"database=data/50%$x.db"};
  o.user = "flowrun";
  const std::string unit = service_unit_text(o);
  CHECK(unit.find("\nRestart=always\n") != std::string::npos);
  CHECK(unit.find("\nWorkingDirectory=\"/srv/my project\"\n") != std::string::npos);
  CHECK(unit.find("\nUser=flowrun\n") != std::string::npos);
  CHECK(unit.find("\nEnvironmentFile=-/etc/flowrun/batch_results.env\n") != std::string::npos);
  CHECK(unit.find("\nExecStart=/usr/local/bin/flowrun \"/srv/my project/workflows/batch_results.yaml\" --state-dir "
                  "\"/srv/my project/.flowrun\" --log-file /var/log/flowrun/batch_results.log --set "
                  "\"database=data/50%%$$x.db\"\n") != std::string::npos);
  CHECK(unit.find("WantedBy=multi-user.target") != std::string::npos);
  CHECK(unit.find("--every") == std::string::npos);  // the file's own schedule applies
}

TEST_CASE("journal: a monitor's finished ticks are pruned beyond the newest N", "[schedule][journal]") {
  TempDir dir;
  auto journal = Journal::open(dir.path());
  for (int i = 0; i < 5; ++i) {
    RunRow r;
    r.id = "tick-" + std::to_string(i);
    r.workflow_path = "/w.yaml";
    r.workflow_name = "w";
    r.content_hash = "h";
    // An unfinished run is never pruned; a partial one is finished (it once was kept forever).
    r.status = i == 0 ? "running" : i == 1 ? "partial" : "succeeded";
    r.started_ms = 1000 + i;
    journal->create_run(r);
  }
  RunRow other;
  other.id = "other";
  other.workflow_path = "/other.yaml";
  other.workflow_name = "o";
  other.content_hash = "h";
  other.status = "succeeded";
  journal->create_run(other);
  CHECK(journal->prune_finished_runs("/w.yaml", 2) == 2);
  std::vector<std::string> left;
  for (const auto& r : journal->recent_runs(10)) left.push_back(r.id);
  std::sort(left.begin(), left.end());
  CHECK(left == std::vector<std::string>{"other", "tick-0", "tick-3", "tick-4"});
}
