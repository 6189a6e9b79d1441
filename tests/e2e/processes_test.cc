// End-to-end: the processes flowrun starts behave like a careful operator's. Stops are SIGTERM
// first, a step lasts as long as its process group, output stays bounded, and a process left by a
// killed flowrun is stopped before `resume` runs the step again.
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "engine/io/json.h"
#include "engine/io/process_group.h"
#include "support/run_cli.h"
#include "support/sim_server.h"

using flowrun::Json;
using flowrun::test::FlowrunProcess;
using flowrun::test::newest_run_id;
using flowrun::test::run_flowrun;
using flowrun::test::TempDir;
using flowrun::test::wait_for_file;
using namespace std::chrono_literals;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// A process that runs (not a zombie) with this pid.
bool running(int pid) { return pid > 0 && !flowrun::process_start_ticks(pid).empty(); }

std::vector<int> pids_in(const std::string& text) {
  std::vector<int> pids;
  std::istringstream in(text);
  for (int pid; in >> pid;) pids.push_back(pid);
  return pids;
}

const char* const kTrapTerm = R"Y(
name: trap_term
inputs:
  dir: {required: true}
steps:
  - id: job
    type: exec
    with:
      argv: [sh, -c, 'trap "echo got TERM; exit 3" TERM; touch "$1/started"; sleep 30 & wait', sh, "${{ inputs.dir }}"]
      timeout: 1s
      kill_grace: 5s
)Y";

}  // namespace

TEST_CASE("a program's SIGTERM handler runs on timeout and on Ctrl+C", "[e2e][processes]") {
  TempDir dir;
  dir.write("trap.yaml", kTrapTerm);
  std::map<std::string, std::string> env{{"FLOWRUN_STATE_DIR", dir.file("state")}};
  SECTION("timeout") {
    auto t0 = std::chrono::steady_clock::now();
    auto r = run_flowrun({dir.file("trap.yaml"), "--set", "dir=" + dir.path()}, env);
    CHECK(seconds_since(t0) < 4.0);  // SIGTERM ended it, not SIGKILL 5 s later
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Catch::Contains("| got TERM"));
  }
  SECTION("Ctrl+C") {
    FlowrunProcess run({dir.file("trap.yaml"), "--set", "dir=" + dir.path()}, env);
    REQUIRE(wait_for_file(dir.file("started")));
    std::this_thread::sleep_for(100ms);  // the trap is set just before `started` is touched
    auto t0 = std::chrono::steady_clock::now();
    run.signal(SIGINT);
    auto r = run.wait();
    CHECK(seconds_since(t0) < 3.0);
    CHECK(r.exit_code == 130);
    CHECK_THAT(r.err, Catch::Contains("| got TERM"));
  }
}

TEST_CASE("a background child keeps the step running, on timeout the whole group stops", "[e2e][processes]") {
  TempDir dir;
  dir.write("bg.yaml", R"Y(
name: background
inputs:
  dir: {required: true}
steps:
  - id: job
    type: exec
    with:
      argv: [sh, -c, 'sleep 25 & echo $! > "$1/bg.pid"; echo started', sh, "${{ inputs.dir }}"]
      timeout: 3s
      kill_grace: 1s
)Y");
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_flowrun({dir.file("bg.yaml"), "--set", "dir=" + dir.path()}, {{"FLOWRUN_STATE_DIR", dir.file("state")}});
  double took = seconds_since(t0);
  CHECK(took >= 2.9);
  CHECK(took < 3.0 + 1.0 + 1.5);
  CHECK(r.exit_code == 1);  // not succeeded: the shell exited 0 but its child still ran
  CHECK_THAT(r.err, Catch::Contains("did not finish within 3s"));
  auto pids = pids_in(dir.read("bg.pid"));
  REQUIRE(pids.size() == 1);
  CHECK_FALSE(running(pids[0]));
}

TEST_CASE("SIGKILL of flowrun during an exec step, then resume: never two copies, none left", "[e2e][processes]") {
  TempDir dir;
  // Each copy notes a violation when an earlier copy still runs (a zombie has ended), then
  // appends its pid; it ends when `go` appears.
  dir.write("long.yaml", R"Y(
name: long_job
inputs:
  dir: {required: true}
steps:
  - id: job
    type: exec
    with:
      argv:
        - sh
        - -c
        - |
          d="$1"
          for p in $(cat "$d/pids" 2>/dev/null); do
            s=$(cut -d' ' -f3 "/proc/$p/stat" 2>/dev/null)
            if [ -n "$s" ] && [ "$s" != Z ]; then echo "$p still runs" >> "$d/violations"; fi
          done
          echo $$ >> "$d/pids"
          touch "$d/started"
          while [ ! -f "$d/go" ]; do sleep 0.05; done
        - sh
        - ${{ inputs.dir }}
)Y");
  std::map<std::string, std::string> env{{"FLOWRUN_STATE_DIR", dir.file("state")}};
  {
    FlowrunProcess run({dir.file("long.yaml"), "--set", "dir=" + dir.path()}, env);
    REQUIRE(wait_for_file(dir.file("started")));
    run.signal(SIGKILL);
    CHECK(run.wait().exit_code == 128 + SIGKILL);
  }
  auto first = pids_in(dir.read("pids"));
  REQUIRE(first.size() == 1);
  REQUIRE(running(first[0]));  // flowrun died; its child did not
  std::string id = newest_run_id(dir.file("state"));

  FlowrunProcess resumed({"resume", id}, env);
  auto until = std::chrono::steady_clock::now() + 10s;
  while (pids_in(dir.read("pids")).size() < 2 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(50ms);
  REQUIRE(pids_in(dir.read("pids")).size() == 2);
  CHECK_FALSE(running(first[0]));
  dir.write("go", "");
  auto r = resumed.wait();
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.err, Catch::Contains("left process group " + std::to_string(first[0])));
  INFO(r.err);
  CHECK_FALSE(std::filesystem::exists(dir.file("violations")));
  for (int pid : pids_in(dir.read("pids"))) CHECK_FALSE(running(pid));
}

TEST_CASE("a 200 MB line is read bounded: flowrun's peak memory stays small", "[e2e][processes]") {
  TempDir dir;
  dir.write("big.yaml", R"Y(
name: big_line
steps:
  - id: big
    type: exec
    with:
      argv: "head -c 200000000 /dev/zero | tr '\\0' x"
      shell: true
  - id: memory
    type: exec
    with:
      argv: [sh, -c, 'grep VmHWM /proc/$PPID/status']
)Y");
  auto r = run_flowrun({dir.file("big.yaml")}, {{"FLOWRUN_STATE_DIR", dir.file("state")}});
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.err, Catch::Contains("[line cut at 65536 bytes; 199934464 more bytes not shown]"));
  CHECK_THAT(r.err, Catch::Contains("output beyond 4194304 bytes was not kept"));
  std::smatch m;
  REQUIRE(std::regex_search(r.err, m, std::regex(R"(VmHWM:\s+(\d+) kB)")));
  CHECK(std::stol(m[1]) < 100 * 1024);  // well under the 200 MB the line holds
}
