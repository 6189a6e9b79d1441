// The process runner with real processes: signal state, process groups, stop, bounded output,
// and the journal of process groups a crashed flowrun left behind.
#include "engine/io/process_runner.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <thread>

#include "engine/cli/orphan_processes.h"
#include "engine/io/logging.h"
#include "engine/io/output_capture.h"
#include "engine/io/process_group.h"
#include "engine/io/redactor.h"
#include "engine/io/step_error.h"
#include "engine/journal/journal.h"
#include "support/sim_server.h"

using namespace flowrun;
using flowrun::test::TempDir;
using namespace std::chrono_literals;

namespace {

ProcessSpec sh(const std::string& script) {
  ProcessSpec spec;
  spec.argv = {"/bin/sh", "-c", script};
  return spec;
}

bool group_exists(int pgid) { return ::kill(-pgid, 0) == 0 || errno != ESRCH; }

// Makes this thread look like flowrun's threads: SIGINT/SIGTERM/SIGUSR1 blocked, SIGPIPE ignored.
struct FlowrunSignalState {
  sigset_t set, old;
  struct sigaction old_pipe {};
  FlowrunSignalState() {
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, &old_pipe);
  }
  ~FlowrunSignalState() {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    sigaction(SIGPIPE, &old_pipe, nullptr);
  }
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("process runner: a child starts with no blocked and no ignored signal", "[process_runner]") {
  FlowrunSignalState flowrun_like;
  SystemProcessRunner runner;
  CancelToken cancel;
  ProcessSpec spec;
  spec.argv = {"grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"};
  ProcessResult r = runner.run(spec, cancel);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");

  ProcessResult pipeline = runner.run(sh("yes | head -1"), cancel);
  CHECK(pipeline.exit_code == 0);
  CHECK(pipeline.out == "y\n");
  CHECK(pipeline.err == "");  // no "Broken pipe" from yes
}

TEST_CASE("process runner: a time-out sends SIGTERM first, so a handler can run", "[process_runner]") {
  FlowrunSignalState flowrun_like;
  SystemProcessRunner runner;
  CancelToken cancel;
  ProcessSpec spec = sh("trap 'echo got TERM; exit 3' TERM; sleep 30 & wait");
  spec.timeout = 300ms;
  spec.kill_grace = 5s;
  int pgid = 0;
  spec.on_started = [&](int g, const std::string&) { pgid = g; };
  auto t0 = std::chrono::steady_clock::now();
  ProcessResult r = runner.run(spec, cancel);
  CHECK(seconds_since(t0) < 2.0);  // the handler ended it, not SIGKILL after 5 s
  CHECK(r.timed_out);
  CHECK(r.out == "got TERM\n");
  CHECK(r.exit_code == 3);
  CHECK_FALSE(group_exists(pgid));
}

TEST_CASE("process runner: cancel stops the group with SIGTERM too", "[process_runner]") {
  SystemProcessRunner runner;
  CancelToken cancel;
  ProcessSpec spec = sh("trap 'echo got TERM; exit 3' TERM; echo ready; sleep 30 & wait");
  std::vector<std::string> lines;
  spec.on_line = [&](std::string_view line, bool) {
    lines.emplace_back(line);
    if (line == "ready") cancel.cancel("test");
  };
  CHECK_THROWS_AS(runner.run(spec, cancel), StepError);
  CHECK(lines == std::vector<std::string>{"ready", "got TERM"});
}

TEST_CASE("process runner: SIGKILL follows after kill_grace when SIGTERM is ignored", "[process_runner]") {
  SystemProcessRunner runner;
  CancelToken cancel;
  ProcessSpec spec = sh("trap '' TERM; sleep 30");
  spec.timeout = 200ms;
  spec.kill_grace = 600ms;
  auto t0 = std::chrono::steady_clock::now();
  ProcessResult r = runner.run(spec, cancel);
  double took = seconds_since(t0);
  CHECK(took >= 0.75);
  CHECK(took < 2.5);
  CHECK(r.timed_out);
  CHECK(r.signal == SIGKILL);
}

TEST_CASE("process runner: the run ends when the group is empty, not when the program exits", "[process_runner]") {
  SystemProcessRunner runner;
  CancelToken cancel;
  SECTION("background children that end on their own are waited for") {
    auto t0 = std::chrono::steady_clock::now();
    ProcessResult r = runner.run(sh("sleep 0.6 & echo started"), cancel);
    CHECK(seconds_since(t0) >= 0.55);
    CHECK(r.exit_code == 0);
    CHECK(r.outlived);
    CHECK(r.out == "started\n");
  }
  SECTION("a time-out stops them, and the readers do not wait for their pipe") {
    ProcessSpec spec = sh("sleep 25 & echo started");
    spec.timeout = 500ms;
    spec.kill_grace = 1s;
    int pgid = 0;
    spec.on_started = [&](int g, const std::string&) { pgid = g; };
    auto t0 = std::chrono::steady_clock::now();
    ProcessResult r = runner.run(spec, cancel);
    CHECK(seconds_since(t0) < 2.0);
    CHECK(r.timed_out);
    CHECK(r.outlived);
    CHECK(r.exit_code == 0);  // the shell itself had exited 0: the caller must not call that success
    CHECK_FALSE(group_exists(pgid));
  }
}

TEST_CASE("process runner: on_started runs before the program, on_ended after the group", "[process_runner]") {
  TempDir dir;
  SystemProcessRunner runner;
  CancelToken cancel;
  ProcessSpec spec;
  spec.argv = {"test", "-f", dir.file("recorded")};
  int started = 0, ended = 0;
  std::string ticks;
  spec.on_started = [&](int pgid, const std::string& t) {
    started = pgid;
    ticks = t;
    std::this_thread::sleep_for(100ms);  // the program must still wait
    dir.write("recorded", "");
  };
  spec.on_ended = [&](int pgid) { ended = pgid; };
  ProcessResult r = runner.run(spec, cancel);
  CHECK(r.exit_code == 0);
  CHECK(started > 0);
  CHECK(ended == started);
  CHECK_FALSE(ticks.empty());

  SECTION("a program that cannot start still ends its group") {
    ProcessSpec bad;
    bad.argv = {"true"};
    bad.cwd = dir.file("no-such-dir");
    int bad_started = 0, bad_ended = 0;
    bad.on_started = [&](int pgid, const std::string&) { bad_started = pgid; };
    bad.on_ended = [&](int pgid) { bad_ended = pgid; };
    CHECK_THROWS_WITH(runner.run(bad, cancel), Catch::Contains("cannot change to"));
    CHECK(bad_started > 0);
    CHECK(bad_ended == bad_started);
  }
  SECTION("a throwing on_started stops the process before it runs") {
    ProcessSpec s;
    s.argv = {"touch", dir.file("ran")};
    s.on_started = [](int, const std::string&) { throw std::runtime_error("journal is full"); };
    CHECK_THROWS_WITH(runner.run(s, cancel), "journal is full");
    std::this_thread::sleep_for(100ms);
    CHECK_FALSE(std::filesystem::exists(dir.file("ran")));
  }
}

TEST_CASE("process runner: stdin, and a program that does not read it", "[process_runner]") {
  SystemProcessRunner runner;
  CancelToken cancel;
  ProcessSpec wc;
  wc.argv = {"wc", "-c"};
  wc.stdin_data = std::string(3'000'000, 'a');
  CHECK(runner.run(wc, cancel).out.find("3000000") != std::string::npos);
  ProcessSpec t;
  t.argv = {"true"};
  t.stdin_data = std::string(3'000'000, 'a');
  CHECK(runner.run(t, cancel).exit_code == 0);  // EPIPE, no SIGPIPE for the caller
}

TEST_CASE("process runner: a 200 MB line is kept bounded", "[process_runner]") {
  SystemProcessRunner runner;
  CancelToken cancel;
  ProcessSpec spec = sh("head -c 200000000 /dev/zero | tr '\\0' x; echo; echo after");
  spec.capture_limit = 1 << 20;
  std::vector<std::string> lines;
  spec.on_line = [&](std::string_view line, bool) { lines.emplace_back(line); };
  ProcessResult r = runner.run(spec, cancel);
  CHECK(r.exit_code == 0);
  CHECK(r.out.size() == (1u << 20));
  CHECK(r.out_dropped == 200000000u + 7 - (1u << 20));
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].size() < OutputCapture::kMaxLine + 100);
  const std::string note = " [line cut at 65536 bytes; " + std::to_string(200000000 - 65536) + " more bytes not shown]";
  CHECK(lines[0] == std::string(65536, 'x') + note);
  CHECK(lines[1] == "after");
}

TEST_CASE("output capture: limits, line ends across chunks, a last line without one", "[process_runner]") {
  std::vector<std::string> lines;
  OutputCapture::LineHandler h = [&](std::string_view l, bool err) {
    lines.push_back((err ? "!" : "") + std::string(l));
  };
  OutputCapture c(10, true, &h, 4);
  c.feed("ab");
  c.feed("c\nabcdef");
  c.feed("gh\nxy");
  c.finish();
  CHECK(c.captured() == "abc\nabcdef");
  CHECK(c.dropped() == 5);
  CHECK(lines == std::vector<std::string>{"!abc", "!abcd [line cut at 4 bytes; 4 more bytes not shown]", "!xy"});
}

TEST_CASE("orphaned process groups: recorded and alive are stopped, a reused pid is not", "[process_runner][journal]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("state"));
  Redactor redactor;
  LogOptions options;
  options.console = false;
  options.capture = true;
  LogHub logs(options, redactor);

  // A group that handles SIGTERM, as a crashed flowrun's exec child would be.
  pid_t leader = ::fork();
  if (leader == 0) {
    ::setpgid(0, 0);
    ::execl("/bin/sh", "sh", "-c", "trap 'exit 0' TERM; sleep 30 & wait", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::setpgid(leader, leader);
  pid_t bystander = ::fork();
  if (bystander == 0) {
    ::setpgid(0, 0);
    ::execl("/bin/sleep", "sleep", "30", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::setpgid(bystander, bystander);
  std::this_thread::sleep_for(100ms);
  journal->record_process_group("r1", "job", leader, process_start_ticks(leader));
  journal->record_process_group("r1", "other", bystander, "1");  // its pid, reused: another start time
  journal->record_process_group("r2", "elsewhere", bystander, process_start_ticks(bystander));
  REQUIRE(journal->process_groups("r1").size() == 2);

  auto t0 = std::chrono::steady_clock::now();
  CHECK(stop_orphaned_process_groups(*journal, "r1", 5s, logs.logger("w")) == 1);
  CHECK(seconds_since(t0) < 3.0);
  int status = 0;
  CHECK(::waitpid(leader, &status, 0) == leader);
  CHECK(live_group_members(leader).empty());
  CHECK(journal->process_groups("r1").empty());
  CHECK(::kill(bystander, 0) == 0);  // not ours to stop
  CHECK(journal->process_groups("r2").size() == 1);
  ::kill(bystander, SIGKILL);
  ::waitpid(bystander, &status, 0);
  // The orphaned `sleep 30` of the group is gone too; reap it if this process adopted it.
  while (::waitpid(-leader, &status, WNOHANG) > 0) {
  }
}
