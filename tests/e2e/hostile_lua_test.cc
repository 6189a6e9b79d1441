// End-to-end: hostile Lua (message handlers and finalizers that loop, backtracking patterns,
// C loops, outputs that balloon, print) through the real binary. Each case ends within 2 s of
// the step's deadline or of a SIGINT, with a clear error for that step; `finally` still runs
// and the process stays small.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>

#include "engine/io/json.h"
#include "support/run_cli.h"
#include "support/sim_server.h"

using flowrun::test::CliResult;
using flowrun::test::FlowrunProcess;
using flowrun::test::run_flowrun;
using flowrun::test::TempDir;
using flowrun::test::wait_for_file;
using namespace std::chrono_literals;

namespace {

const char* const kFinally = "finally:\n  - {id: cleanup, type: log, with: {message: \"finally ran\"}}\n";

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::map<std::string, std::string> env_of(const TempDir& dir) { return {{"FLOWRUN_STATE_DIR", dir.file("state")}}; }

void write_workflow(const TempDir& dir, const std::string& steps, const std::string& top = "") {
  dir.write("wf.yaml", "name: hostile-lua\n" + top + "steps:\n" + steps + kFinally);
}

// A Lua step running `body` (the inside of run(with, flow)) with `extra` step keys.
std::string lua_step(const TempDir& dir, const std::string& name, const std::string& body,
                     const std::string& extra = "") {
  dir.write(name + ".lua", "return function(with, flow)\n" + body + "\nend\n");
  return "  - {id: " + name + ", lua: " + dir.file(name + ".lua") + extra + "}\n";
}

// The highest resident set size of a process, read while it runs (0 once it is gone).
size_t vm_hwm_kib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoul(line.substr(6));
  return 0;
}

struct Finished {
  CliResult result;
  double seconds = 0;
  size_t peak_kib = 0;
};

// Runs flowrun with `args`, watching its peak memory; sends SIGINT once `started` exists when given.
Finished run_watched(const TempDir& dir, std::vector<std::string> args, const std::string& started = "") {
  FlowrunProcess run(args, env_of(dir));
  std::atomic<bool> done{false};
  std::atomic<size_t> peak{0};
  std::thread watcher([&] {
    while (!done) {
      peak = std::max<size_t>(peak, vm_hwm_kib(run.pid()));
      std::this_thread::sleep_for(10ms);
    }
  });
  auto t0 = std::chrono::steady_clock::now();
  if (!started.empty()) {
    REQUIRE(wait_for_file(started));
    std::this_thread::sleep_for(50ms);  // inside the loop, well before the instruction limit
    t0 = std::chrono::steady_clock::now();
    run.signal(SIGINT);
  }
  Finished f;
  f.result = run.wait();
  f.seconds = seconds_since(t0);
  done = true;
  watcher.join();
  f.peak_kib = peak;
  return f;
}

bool clean_exit(const CliResult& r) { return r.exit_code >= 0 && r.exit_code <= 3; }
bool has(const CliResult& r, const std::string& text) { return (r.out + r.err).find(text) != std::string::npos; }

void check_failed_cleanly(const Finished& f, const std::string& error) {
  INFO("exit " << f.result.exit_code << " after " << f.seconds << " s\nstdout:\n"
               << f.result.out << "\nstderr:\n"
               << f.result.err);
  CHECK(clean_exit(f.result));
  CHECK(f.result.exit_code == 1);
  CHECK(has(f.result, "finally ran"));
  CHECK(has(f.result, error));
}

// A step timeout must end the step within 2 s of it. It is short, so that it comes before the
// instruction limit (200 million, under half a second of a fast core), which would stop the
// loop too but is not what this checks.
void check_timed_out(const TempDir& dir, const std::string& body) {
  write_workflow(dir, lua_step(dir, "spin", body, ", timeout: 150ms"));
  auto f = run_watched(dir, {dir.file("wf.yaml")});
  check_failed_cleanly(f, "timed out");
  CHECK(f.seconds < 2.15);
}

// SIGINT while the script is inside `body` must stop the run within 2 s, with the detach exit code.
void check_interrupted(const TempDir& dir, const std::string& body) {
  write_workflow(dir, lua_step(dir, "spin", "flow.exec({'touch', '" + dir.file("started") + "'})\n" + body));
  auto f = run_watched(dir, {dir.file("wf.yaml")}, dir.file("started"));
  INFO("exit " << f.result.exit_code << " after " << f.seconds << " s\nstderr:\n" << f.result.err);
  CHECK(f.seconds < 2.0);
  CHECK(f.result.exit_code == 130);
}

const char* const kXpcallLoop = "xpcall(function() while true do end end, function() while true do end end)";
const char* const kBacktrack = "('a'):rep(5000):find('.-.-.-.-.-.-b')";
const char* const kMove = "table.move({}, 1, 1e14, 1, {})";

}  // namespace

TEST_CASE("hostile: an xpcall handler that loops honours the step timeout and SIGINT", "[hostile][e2e]") {
  TempDir dir;
  SECTION("timeout") { check_timed_out(dir, kXpcallLoop); }
  SECTION("SIGINT") { check_interrupted(dir, kXpcallLoop); }
}

TEST_CASE("hostile: an xpcall handler that loops in an expression is stopped, also in --dry-run", "[hostile][e2e]") {
  TempDir dir;
  write_workflow(dir, "  - {id: say, type: log, with: {message: \"${{ " + std::string(kXpcallLoop) + " }}\"}}\n");
  for (bool dry : {false, true}) {
    std::vector<std::string> args{dir.file("wf.yaml")};
    if (dry) args.push_back("--dry-run");
    auto f = run_watched(dir, args);
    INFO((dry ? "--dry-run" : "run") << ": exit " << f.result.exit_code << "\n" << f.result.out << f.result.err);
    CHECK(clean_exit(f.result));
    CHECK(f.result.exit_code != 0);
    CHECK(has(f.result, "instruction limit exceeded"));
    CHECK(f.seconds < 5.0);
  }
  auto v = run_flowrun({"validate", dir.file("wf.yaml")});
  CHECK(v.exit_code == 0);
}

TEST_CASE("hostile: a __gc metamethod is refused with a clear error", "[hostile][e2e]") {
  TempDir dir;
  write_workflow(dir, lua_step(dir, "gc", "setmetatable({}, {__gc = function() while true do end end})\nreturn {}"));
  auto f = run_watched(dir, {dir.file("wf.yaml")});
  check_failed_cleanly(f, "__gc metamethods are not allowed in the sandbox");
  CHECK(f.seconds < 5.0);
}

TEST_CASE("hostile: Lua pattern backtracking honours the step timeout and SIGINT", "[hostile][e2e]") {
  TempDir dir;
  SECTION("find, timeout") { check_timed_out(dir, std::string("return {r = ") + kBacktrack + "}"); }
  SECTION("gsub, timeout") { check_timed_out(dir, "return {r = ('a'):rep(5000):gsub('.-.-.-.-.-.-b', '')}"); }
  SECTION("gmatch, SIGINT") { check_interrupted(dir, "for m in ('a'):rep(5000):gmatch('.-.-.-.-.-.-b') do end"); }
  SECTION("match in an expression") {
    write_workflow(dir,
                   "  - {id: say, type: log, with: {message: \"${{ ('a'):rep(5000):match('.-.-.-.-.-.-b') }}\"}}\n");
    auto f = run_watched(dir, {dir.file("wf.yaml")});
    check_failed_cleanly(f, "instruction limit exceeded");
    CHECK(f.seconds < 5.0);
  }
}

TEST_CASE("hostile: table.move over 1e14 elements honours the step timeout and SIGINT", "[hostile][e2e]") {
  TempDir dir;
  SECTION("timeout") { check_timed_out(dir, kMove); }
  SECTION("SIGINT") { check_interrupted(dir, kMove); }
}

TEST_CASE("hostile: Lua outputs that balloon fail at max_output, fast and small", "[hostile][e2e]") {
  TempDir dir;
  SECTION("a table doubled 40 times") {
    write_workflow(dir, lua_step(dir, "dbl", "local t = {'x'} for i = 1, 40 do t = {t, t} end return {t = t}"));
    auto f = run_watched(dir, {dir.file("wf.yaml")});
    check_failed_cleanly(f, "outputs are larger than max_output (16 MiB)");
    CHECK(f.peak_kib < 400 * 1024);
  }
  SECTION("100 references to one 8 MiB string") {
    write_workflow(dir,
                   lua_step(dir, "refs",
                            "local s = ('x'):rep(8 << 20) local t = {} for i = 1, 100 do t[i] = s end return {t = t}"));
    auto f = run_watched(dir, {dir.file("wf.yaml")});
    check_failed_cleanly(f, "outputs are larger than max_output (16 MiB)");
    CHECK(f.peak_kib < 400 * 1024);
    CHECK(f.seconds < 10.0);
    size_t stored = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir.file("state")))
      if (e.is_regular_file()) stored += e.file_size();
    CHECK(stored < (8u << 20));
  }
  SECTION("a step's own max_output, for any step type") {
    write_workflow(dir,
                   "  - {id: big, type: exec, max_output: 1KiB, with: {argv: [sh, -c, \"head -c 4000 /dev/zero | tr "
                   "'\\\\0' x\"]}}\n");
    auto f = run_watched(dir, {dir.file("wf.yaml")});
    check_failed_cleanly(f, "outputs are larger than max_output (1 KiB)");
    write_workflow(dir, lua_step(dir, "fits", "return {s = ('x'):rep(20 << 20)}", ", max_output: 32MiB"));
    auto ok = run_watched(dir, {dir.file("wf.yaml")});
    INFO(ok.result.err);
    CHECK(ok.result.exit_code == 0);
  }
  SECTION("a bad max_output is a validate error") {
    write_workflow(dir, "  - {id: big, type: log, max_output: lots, with: {message: hi}}\n");
    auto v = run_flowrun({"validate", dir.file("wf.yaml")});
    CHECK(v.exit_code == 2);
    CHECK_THAT(v.err, Catch::Contains("bad size for max_output"));
  }
}

TEST_CASE("hostile: reading steps.each.outputs.count after a huge for_each costs nothing", "[hostile][e2e]") {
  // 1,500 items of 16 KB outputs: 24 MB, past the 16 MiB expression memory limit as a whole.
  TempDir dir;
  dir.write("list.lua",
            "return function() local t = {} for i = 1, 1500 do t[i] = ('item-%06d'):format(i) end "
            "return {list = t} end\n");
  write_workflow(
      dir,
      "  - {id: list, lua: " + dir.file("list.lua") +
          "}\n"
          "  - id: each\n"
          "    for_each: ${{ steps.list.outputs.list }}\n"
          "    concurrency: 8\n"
          "    steps:\n"
          "      - {id: keep, type: set, with: {name: \"${{ item }}\", padding: \"${{ string.rep('p', 16000) }}\"}}\n"
          "  - {id: report, type: log, with: {message: \"count=${{ steps.each.outputs.count }}\"}}\n");
  auto f = run_watched(dir, {dir.file("wf.yaml")});
  INFO("exit " << f.result.exit_code << "\n" << f.result.err.substr(0, 3000));
  CHECK(f.result.exit_code == 0);
  CHECK(has(f.result, "count=1500"));
}

TEST_CASE("hostile: print in a Lua step goes to the redacting log, and is absent in expressions", "[hostile][e2e]") {
  TempDir dir;
  write_workflow(
      dir, lua_step(dir, "talk", "print('token', with.t, 42)\nreturn {}", ", with: {t: \"${{ secrets.TOKEN }}\"}"),
      "secrets: [TOKEN]\n");
  FlowrunProcess run({dir.file("wf.yaml")}, {{"FLOWRUN_STATE_DIR", dir.file("state")}, {"TOKEN", "hunter2-secret"}});
  auto r = run.wait();
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(has(r, "token\t***\t42"));
  CHECK_FALSE(has(r, "hunter2-secret"));

  write_workflow(dir, "  - {id: say, type: log, with: {message: \"${{ print('x') }}\"}}\n");
  auto v = run_flowrun({"validate", dir.file("wf.yaml")});
  CHECK(v.exit_code == 2);
  CHECK_THAT(v.err, Catch::Contains("unknown function 'print'"));
}
