// End-to-end: durable runs. The real binary is interrupted, killed and resumed.
#include <signal.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <regex>
#include <thread>

#include "engine/io/json.h"
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

size_t lines_in(const std::string& text) { return static_cast<size_t>(std::count(text.begin(), text.end(), '\n')); }

// Three steps: `first` counts its executions in a file and prints a value later steps use,
// `wait` blocks until a file appears (so the test decides when it ends), `last` uses `first`'s
// output. `finally` counts its executions too.
void write_workflow(const TempDir& dir) {
  dir.write("durable.yaml", R"Y(
name: durable
inputs:
  dir: {required: true}
steps:
  - id: first
    type: exec
    with:
      argv: [sh, -c, 'echo run >> "$1/first.count"; echo value-$(date +%s%N)', sh, "${{ inputs.dir }}"]
  - id: wait
    type: exec
    with:
      argv: [sh, -c, 'touch "$1/waiting"; while [ ! -f "$1/go" ]; do sleep 0.05; done', sh, "${{ inputs.dir }}"]
  - id: last
    type: exec
    with:
      argv: [sh, -c, 'printf %s "$1" > "$2/last.txt"', sh, "${{ steps.first.outputs.stdout }}", "${{ inputs.dir }}"]
finally:
  - id: cleanup
    type: exec
    with:
      argv: [sh, -c, 'echo run >> "$1/finally.count"', sh, "${{ inputs.dir }}"]
)Y");
}

// Starts the workflow, SIGKILLs flowrun while `wait` runs, and returns the run's id.
std::string killed_run(const TempDir& dir, const std::map<std::string, std::string>& env) {
  FlowrunProcess run({dir.file("durable.yaml"), "--set", "dir=" + dir.path()}, env);
  REQUIRE(wait_for_file(dir.file("waiting")));
  run.signal(SIGKILL);
  CHECK(run.wait().exit_code == 128 + SIGKILL);
  return newest_run_id(dir.file("state"));
}

}  // namespace

TEST_CASE("SIGKILL mid-run, then resume: finished steps ran once, earlier outputs reused", "[e2e][durable]") {
  TempDir dir;
  write_workflow(dir);
  std::map<std::string, std::string> env{{"FLOWRUN_STATE_DIR", dir.file("state")}};
  std::string id = killed_run(dir, env);
  std::string first_value;
  {
    auto show = run_flowrun({"show", id, "--json"}, env);
    Json j = Json::parse(show.out);
    CHECK(j["status"] == "running");  // killed: nobody marked it
    for (const auto& s : j["steps"])
      if (s["path"] == "first") first_value = Json::parse(s["outputs"].get<std::string>())["stdout"];
  }
  REQUIRE(!first_value.empty());

  std::remove(dir.file("waiting").c_str());
  dir.write("go", "");
  auto resumed = run_flowrun({"resume", id}, env);
  INFO(resumed.err);
  CHECK(resumed.exit_code == 0);
  CHECK(lines_in(dir.read("first.count")) == 1);    // not run again
  CHECK(dir.read("last.txt") == first_value);       // the earlier output, reused
  CHECK(lines_in(dir.read("finally.count")) == 1);  // cleanup ran once, at the end
  CHECK(resumed.err.find("[first] succeeded in an earlier process of this run; reusing its outputs") !=
        std::string::npos);
  auto again = run_flowrun({"resume", id}, env);
  CHECK(again.exit_code == 2);
  CHECK(again.err.find("already ended succeeded") != std::string::npos);
}

TEST_CASE("SIGINT detaches: exit 130 and the two commands, cancel then runs finally exactly once", "[e2e][durable]") {
  TempDir dir;
  write_workflow(dir);
  std::map<std::string, std::string> env{{"FLOWRUN_STATE_DIR", dir.file("state")}};
  FlowrunProcess run({dir.file("durable.yaml"), "--set", "dir=" + dir.path()}, env);
  REQUIRE(wait_for_file(dir.file("waiting")));
  auto t0 = std::chrono::steady_clock::now();
  run.signal(SIGINT);
  auto r = run.wait();
  CHECK(std::chrono::steady_clock::now() - t0 < 1s);
  CHECK(r.exit_code == 130);
  std::smatch m;
  REQUIRE(std::regex_search(r.err, m, std::regex("resume it:  flowrun resume (\\S+)")));
  std::string id = m[1];
  CHECK(r.err.find("cancel it:  flowrun cancel " + id) != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.file("finally.count")));  // detached: cleanup still owed

  auto cancel = run_flowrun({"cancel", id}, env);
  INFO(cancel.err);
  CHECK(cancel.exit_code == 0);
  CHECK(lines_in(dir.read("finally.count")) == 1);
  CHECK(lines_in(dir.read("first.count")) == 1);
  CHECK_FALSE(std::filesystem::exists(dir.file("last.txt")));
  auto again = run_flowrun({"cancel", id}, env);
  CHECK(again.exit_code == 2);
  CHECK(lines_in(dir.read("finally.count")) == 1);
  auto show = run_flowrun({"show", id}, env);
  CHECK(show.out.find("status    cancelled") != std::string::npos);
}

TEST_CASE("on-interrupt cleanup runs finally on SIGINT", "[e2e][durable]") {
  TempDir dir;
  write_workflow(dir);
  FlowrunProcess run({dir.file("durable.yaml"), "--set", "dir=" + dir.path(), "--on-interrupt", "cleanup"},
                     {{"FLOWRUN_STATE_DIR", dir.file("state")}});
  REQUIRE(wait_for_file(dir.file("waiting")));
  run.signal(SIGINT);
  CHECK(run.wait().exit_code == 130);
  CHECK(lines_in(dir.read("finally.count")) == 1);
}

TEST_CASE("two resumes of one run: the second refuses, naming the owner", "[e2e][durable]") {
  TempDir dir;
  write_workflow(dir);
  std::map<std::string, std::string> env{{"FLOWRUN_STATE_DIR", dir.file("state")}};
  std::string id = killed_run(dir, env);
  std::remove(dir.file("waiting").c_str());
  FlowrunProcess owner({"resume", id}, env);
  REQUIRE(wait_for_file(dir.file("waiting")));  // the owner holds the run and waits
  auto second = run_flowrun({"resume", id}, env);
  CHECK(second.exit_code == 2);
  CHECK(second.err.find("is owned by pid " + std::to_string(owner.pid()) + " on ") != std::string::npos);
  dir.write("go", "");
  CHECK(owner.wait().exit_code == 0);
}

TEST_CASE("a corrupted journal gives a clear error and is never overwritten", "[e2e][durable]") {
  TempDir dir;
  std::filesystem::create_directories(dir.file("state"));
  std::string garbage(8192, 'x');
  dir.write("state/journal.db", garbage);
  dir.write("ok.yaml", "steps:\n  - {id: a, type: log, with: {message: hi}}\n");
  auto r = run_flowrun({dir.file("ok.yaml")}, {{"FLOWRUN_STATE_DIR", dir.file("state")}});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("the journal " + dir.file("state/journal.db") + " cannot be used") != std::string::npos);
  CHECK(r.err.find("left untouched; move it aside") != std::string::npos);
  CHECK(dir.read("state/journal.db") == garbage);
  CHECK(run_flowrun({"runs"}, {{"FLOWRUN_STATE_DIR", dir.file("state")}}).exit_code == 2);
}

TEST_CASE("resume refuses when the workflow lost a recorded step", "[e2e][durable]") {
  TempDir dir;
  write_workflow(dir);
  std::map<std::string, std::string> env{{"FLOWRUN_STATE_DIR", dir.file("state")}};
  std::string id = killed_run(dir, env);
  std::string text = dir.read("durable.yaml");
  text.replace(text.find("id: first"), 9, "id: frist");
  text.replace(text.find("steps.first."), 12, "steps.frist.");
  dir.write("durable.yaml", text);
  auto r = run_flowrun({"resume", id}, env);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("these recorded steps are gone from it: first") != std::string::npos);
  // The killed run's `wait` still runs. With the file restored, as the message says, cancel
  // stops it (its process group is in the journal); else it would outlive the test, polling a
  // directory that is gone.
  write_workflow(dir);
  auto cancel = run_flowrun({"cancel", id}, env);
  INFO(cancel.err);
  CHECK(cancel.exit_code == 0);
}

TEST_CASE("secret values given as inputs are not stored in the journal", "[e2e][durable][secrets]") {
  TempDir dir;
  dir.write("s.yaml",
            "secrets: [FLOWRUN_TEST_SECRET]\ninputs:\n  token: x\nsteps:\n"
            "  - {id: a, type: set, with: {t: \"${{ inputs.token }}\"}}\n");
  std::map<std::string, std::string> env{{"FLOWRUN_STATE_DIR", dir.file("state")},
                                         {"FLOWRUN_TEST_SECRET", "pa55-word-9"}};
  CHECK(run_flowrun({dir.file("s.yaml"), "--set", "token=pa55-word-9"}, env).exit_code == 0);
  auto show = run_flowrun({"show", newest_run_id(dir.file("state")), "--json"}, env);
  CHECK(show.out.find("pa55-word-9") == std::string::npos);
  std::string raw = dir.read("state/journal.db") + dir.read("state/journal.db-wal");
  CHECK(raw.find("pa55-word-9") == std::string::npos);
}
