// End-to-end: the real flowrun binary, run as a user would.
#include <catch2/catch.hpp>
#include <regex>

#include "engine/io/json.h"
#include "support/run_cli.h"
#include "support/sim_server.h"

using flowrun::Json;
using flowrun::test::run_flowrun;
using flowrun::test::TempDir;
using namespace std::chrono_literals;

TEST_CASE("validate: a typo in a key prints FILE:LINE:COL and exits 2", "[e2e]") {
  TempDir dir;
  dir.write("typo.yaml", "version: 1\nname: typo\nsteps:\n  - id: hello\n    type: log\n    wtih: {message: hi}\n");
  auto r = run_flowrun({"validate", dir.file("typo.yaml")});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(dir.file("typo.yaml") + ":6:5: error: unknown key 'wtih' in step") != std::string::npos);
  CHECK(r.err.find("hint: did you mean 'with'?") != std::string::npos);
  // Running it is refused the same way, before anything runs.
  CHECK(run_flowrun({dir.file("typo.yaml")}).exit_code == 2);
}

TEST_CASE("validate: the shipped workflows are valid", "[e2e]") {
  auto r = run_flowrun({"validate", "workflows/video_batch.yaml", "tests/e2e/flaky_exec.yaml"});
  INFO(r.err);
  CHECK(r.exit_code == 0);
}

TEST_CASE("an exec step that fails twice then succeeds shows attempts and delays, exit 0", "[e2e]") {
  TempDir dir;
  auto r = run_flowrun({"tests/e2e/flaky_exec.yaml", "--set", "counter=" + dir.file("count")});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(std::regex_search(
      r.err,
      std::regex(
          R"(\d\d:\d\d:\d\d WARN \[flaky\] attempt 1/4 failed \(exit:3\): sh exited with code 3: not yet; retrying in 100ms)")));
  CHECK(r.err.find("WARN [flaky] attempt 2/4 failed (exit:3): sh exited with code 3: not yet; retrying in 200ms") !=
        std::string::npos);
  CHECK(r.err.find("INFO [flaky] succeeded on attempt 3/4") != std::string::npos);
  CHECK(dir.read("count") == "3\n");
  CHECK(std::regex_search(r.out, std::regex(R"(flaky\s+exec\s+succeeded\s+3\s)")));
}

TEST_CASE("a failing workflow exits 1 with the error in the summary", "[e2e]") {
  TempDir dir;
  dir.write("fail.yaml", "steps:\n  - {id: broken, type: exec, with: {argv: [sh, -c, 'echo nope >&2; exit 4']}}\n");
  auto r = run_flowrun({dir.file("fail.yaml")});
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("failed") != std::string::npos);
  CHECK(r.out.find("sh exited with code 4: nope") != std::string::npos);
}

TEST_CASE("dry run from the CLI prints resolved parameters and runs nothing with side effects", "[e2e]") {
  TempDir dir;
  dir.write("dry.yaml",
            "inputs:\n  target: x\nsteps:\n"
            "  - {id: make, type: exec, with: {argv: [touch, \"${{ inputs.target }}\"]}}\n");
  auto r = run_flowrun({dir.file("dry.yaml"), "--dry-run", "--set", "target=" + dir.file("made")});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("make (exec)\n    argv: [\"touch\",\"" + dir.file("made") + "\"]") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.file("made")));
}

TEST_CASE("JSON logs in a file, with secrets redacted everywhere", "[e2e][secrets]") {
  TempDir dir;
  dir.write("secret.yaml",
            "secrets: [FLOWRUN_TEST_TOKEN]\nsteps:\n"
            "  - {id: say, type: log, with: {message: \"token=${{ secrets.FLOWRUN_TEST_TOKEN }}\"}}\n"
            "  - {id: echo, type: exec, with: {argv: [sh, -c, 'echo $FLOWRUN_TEST_TOKEN; exit 1']}}\n");
  auto r = run_flowrun({dir.file("secret.yaml"), "--log-format", "json", "--log-file", dir.file("run.log")},
                       {{"FLOWRUN_TEST_TOKEN", "hunter2-secret"}});
  CHECK(r.exit_code == 1);
  std::string log = dir.read("run.log");
  CHECK(log.find("hunter2-secret") == std::string::npos);
  CHECK(r.err.find("hunter2-secret") == std::string::npos);
  CHECK(r.out.find("hunter2-secret") == std::string::npos);
  std::istringstream lines(log);
  std::string line;
  bool saw = false;
  while (std::getline(lines, line)) {
    Json j = Json::parse(line);  // every line is one JSON object
    CHECK(j.contains("time"));
    if (j["step"] == "say" && j["level"] == "INFO") {
      CHECK(j["message"] == "token=***");
      saw = true;
    }
  }
  CHECK(saw);
}

TEST_CASE("inputs: an unknown --set and a missing required input exit 2", "[e2e]") {
  TempDir dir;
  dir.write("in.yaml", "inputs:\n  bucket: {required: true}\nsteps:\n  - {id: a, type: log, with: {message: hi}}\n");
  auto missing = run_flowrun({dir.file("in.yaml")});
  CHECK(missing.exit_code == 2);
  CHECK(missing.err.find(dir.file("in.yaml") + ":2:3: error: required input 'bucket' has no value") !=
        std::string::npos);
  auto unknown = run_flowrun({dir.file("in.yaml"), "--set", "bucket=b", "--set", "bukcet=c"});
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.err.find("did you mean 'bucket'?") != std::string::npos);
}

TEST_CASE("graph, steps, --help and --version", "[e2e]") {
  auto graph = run_flowrun({"graph", "tests/e2e/flaky_exec.yaml"});
  CHECK(graph.exit_code == 0);
  CHECK(graph.out.rfind("flowchart TD\n", 0) == 0);
  CHECK(graph.out.find("flaky[\"flaky<br/>exec\"]") != std::string::npos);

  auto steps = run_flowrun({"steps"});
  CHECK(steps.exit_code == 0);
  for (const char* t : {"exec\n", "http\n", "sleep\n", "log\n", "set\n"}) CHECK(steps.out.find(t) != std::string::npos);
  auto json = run_flowrun({"steps", "--json"});
  CHECK(Json::parse(json.out).is_array());

  auto help = run_flowrun({"--help"});
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("flowrun validate FILE...") != std::string::npos);
  auto run_help = run_flowrun({"validate", "--help"});
  CHECK(run_help.exit_code == 0);
  CHECK(run_flowrun({"--version"}).out.rfind("flowrun ", 0) == 0);
  CHECK(run_flowrun({}).exit_code == 2);
}

TEST_CASE("validate: sql's transaction and create must be bool, as exec's shell", "[e2e][params]") {
  TempDir dir;
  dir.write("sql.yaml",
            "version: 1\nname: sql\nsteps:\n  - id: q\n    type: sql\n"
            "    with: {database: app.db, statement: SELECT 1, transaction: \"yes please\", create: 7}\n");
  auto r = run_flowrun({"validate", dir.file("sql.yaml")});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(dir.file("sql.yaml") + ":6:64: error: expected bool for parameter 'transaction'") !=
        std::string::npos);
  CHECK(r.err.find(dir.file("sql.yaml") + ":6:86: error: expected bool for parameter 'create'") != std::string::npos);
  CHECK(r.err.find("hint: write true or false") != std::string::npos);
  dir.write("exec.yaml",
            "version: 1\nname: exec\nsteps:\n  - id: e\n    type: exec\n"
            "    with: {argv: [ls], shell: \"yes please\"}\n");
  auto e = run_flowrun({"validate", dir.file("exec.yaml")});
  CHECK(e.exit_code == 2);
  CHECK(e.err.find(dir.file("exec.yaml") + ":6:31: error: expected bool for parameter 'shell'") != std::string::npos);
}
