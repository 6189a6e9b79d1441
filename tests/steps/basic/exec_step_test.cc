#include <catch2/catch.hpp>
#include <thread>

#include "support/harness.h"
#include "support/sim_server.h"

using namespace flowrun;
using flowrun::test::Harness;
using flowrun::test::TempDir;
using namespace std::chrono_literals;

TEST_CASE("exec: argv, env, cwd, stdin, outputs capture stdout, stderr and exit code", "[steps][exec]") {
  Harness h;
  TempDir dir;
  REQUIRE(h.load(R"Y(steps:
  - id: a
    type: exec
    with:
      argv: [sh, -c, 'echo "out:$GREETING:$(pwd)"; cat; echo err >&2']
      env: {GREETING: hello}
      cwd: )Y" + dir.path() +
                 R"Y(
      stdin: "from stdin"
)Y") == "");
  RunResult r = h.run();
  REQUIRE(r.status == RunState::kSucceeded);
  const Json& out = r.steps["a"]["outputs"];
  CHECK(out["stdout"] == "out:hello:" + dir.path() + "\nfrom stdin");  // as written: no newline added
  CHECK(out["stderr"] == "err\n");
  CHECK(out["exit_code"] == 0);
  CHECK(h.log_contains("INFO [a] | out:hello:"));
  CHECK(h.log_contains("INFO [a] ! err"));
}

TEST_CASE("exec: a non-zero exit is an error of kind exit:N, retried only when asked", "[steps][exec]") {
  Harness h;
  REQUIRE(h.load(R"(steps:
  - id: a
    type: exec
    with: {argv: [sh, -c, 'echo broken >&2; exit 7']}
)") == "");
  RunResult r = h.run();
  CHECK(r.status == RunState::kFailed);
  CHECK(r.error == "sh exited with code 7: broken (exit:7)");
}

TEST_CASE("exec: no shell unless asked, a string argv is split into words", "[steps][exec]") {
  Harness h;
  REQUIRE(h.load(R"Y(steps:
  - {id: a, type: exec, with: {argv: "echo 'two words' $HOME;ls"}}
  - {id: b, type: exec, with: {argv: "echo $((1+2))", shell: true}}
)Y") == "");
  RunResult r = h.run();
  REQUIRE(r.status == RunState::kSucceeded);
  CHECK(r.steps["a"]["outputs"]["stdout"] == "two words $HOME;ls\n");
  CHECK(r.steps["b"]["outputs"]["stdout"] == "3\n");
}

TEST_CASE("exec: parse_json puts stdout's JSON into outputs", "[steps][exec]") {
  Harness h;
  REQUIRE(h.load(R"(steps:
  - {id: a, type: exec, with: {argv: [echo, '{"pending": 3}'], parse_json: true}}
  - {id: b, type: set, with: {p: "${{ steps.a.outputs.json.pending }}"}}
)") == "");
  RunResult r = h.run();
  CHECK(r.steps["b"]["outputs"]["p"] == 3);
}

TEST_CASE("exec: a timeout kills the whole process group", "[steps][exec]") {
  Harness h;
  h.use_real_clock = true;
  TempDir dir;
  // The shell starts a child that would write a file after 2 s: it must die with the group.
  REQUIRE(h.load(R"(steps:
  - id: a
    type: exec
    with:
      argv: [sh, -c, 'sleep 2 && touch )" +
                 dir.file("survived") + R"(']
      timeout: 200ms
)") == "");
  auto t0 = std::chrono::steady_clock::now();
  RunResult r = h.run();
  CHECK(std::chrono::steady_clock::now() - t0 < 1500ms);
  CHECK(r.status == RunState::kFailed);
  CHECK(r.error == "sh did not finish within 200ms (its timeout) (timeout)");
  std::this_thread::sleep_for(2500ms);
  CHECK_FALSE(std::filesystem::exists(dir.file("survived")));
}

TEST_CASE("exec: an unknown program is a permanent error", "[steps][exec]") {
  Harness h;
  REQUIRE(h.load("steps:\n  - {id: a, type: exec, with: {argv: [no-such-program-flowrun]}}\n") == "");
  RunResult r = h.run();
  CHECK(r.error == "command not found: no-such-program-flowrun (permanent)");
}

TEST_CASE("sleep is cancellable within well under a second", "[steps][sleep]") {
  Harness h;
  h.use_real_clock = true;
  REQUIRE(h.load("steps:\n  - {id: a, type: sleep, with: {duration: 1h}}\n") == "");
  Duration took{0};
  RunResult r = h.run_cancelled_after(100ms, &took);
  CHECK(took < 1s);
  CHECK(r.status == RunState::kCancelled);
}
