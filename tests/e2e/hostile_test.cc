// End-to-end: hostile input (bytes that are not UTF-8, JSON nested 100,000 deep, regexes that
// backtrack, absurd durations) through the real binary. Each case ends in a clear error for that
// step, or succeeds; never a crash, and `finally` still runs.
#include <catch2/catch.hpp>
#include <fstream>

#include "engine/io/json.h"
#include "support/run_cli.h"
#include "support/sim_server.h"

using flowrun::Json;
using flowrun::test::CliResult;
using flowrun::test::run_flowrun;
using flowrun::test::SimServer;
using flowrun::test::TempDir;

namespace {

const char* const kFinally = "finally:\n  - {id: cleanup, type: log, with: {message: \"finally ran\"}}\n";

// Writes a workflow of `steps` (a YAML list, two-space indented) plus a finally log step and
// runs it with its own state directory.
CliResult run_steps(const TempDir& dir, const std::string& steps) {
  dir.write("wf.yaml", "name: hostile\nsteps:\n" + steps + kFinally);
  return run_flowrun({dir.file("wf.yaml")}, {{"FLOWRUN_STATE_DIR", dir.file("state")}});
}

// The exit codes flowrun gives on purpose; a crash is 134, 139 or a negative (signal) status.
bool clean_exit(const CliResult& r) { return r.exit_code >= 0 && r.exit_code <= 3; }

bool finally_ran(const CliResult& r) { return (r.out + r.err).find("finally ran") != std::string::npos; }

// The run as `flowrun show --json` prints it (which must itself work on what was stored).
Json last_run(const TempDir& dir) {
  const std::map<std::string, std::string> env{{"FLOWRUN_STATE_DIR", dir.file("state")}};
  auto runs = run_flowrun({"runs", "--json"}, env);
  REQUIRE(runs.exit_code == 0);
  Json list = Json::parse(runs.out);
  REQUIRE(!list.empty());
  auto show = run_flowrun({"show", list[0]["id"].get<std::string>(), "--json"}, env);
  INFO(show.err);
  REQUIRE(show.exit_code == 0);
  return Json::parse(show.out);
}

Json step_row(const Json& run, const std::string& path) {
  for (const auto& s : run["steps"])
    if (s.value("path", "") == path) return s;
  return Json();
}

void check_handled(const CliResult& r) {
  INFO("exit " << r.exit_code << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err);
  CHECK(clean_exit(r));
  CHECK(finally_ran(r));
}

}  // namespace

TEST_CASE("hostile: exec output that is not UTF-8 is stored with U+FFFD, and the run ends", "[hostile][e2e]") {
  TempDir dir;
  auto r = run_steps(dir,
                     "  - {id: latin1, type: exec, with: {argv: [sh, -c, \"printf 'caf\\\\351\\\\n'\"]}}\n"
                     "  - {id: echo, type: log, with: {message: \"got ${{ steps.latin1.outputs.stdout }}\"}}\n");
  check_handled(r);
  CHECK(r.exit_code == 0);
  Json run = last_run(dir);
  CHECK(run["status"] == "succeeded");
  Json outputs = Json::parse(step_row(run, "latin1").value("outputs", std::string("{}")), nullptr, false);
  if (outputs.is_discarded()) outputs = step_row(run, "latin1")["outputs"];
  CHECK(outputs["stdout"] == "caf\xEF\xBF\xBD\n");
}

TEST_CASE("hostile: an HTTP body that is not UTF-8 is stored with U+FFFD", "[hostile][e2e]") {
  TempDir dir;
  SimServer sim(Json{{"/latin1", Json::array({{{"status", 200}, {"body_hex", "636166e90a"}}})}});
  auto r = run_steps(dir, "  - {id: get, type: http, with: {url: \"" + sim.url("/latin1") + "\"}}\n");
  check_handled(r);
  CHECK(r.exit_code == 0);
  CHECK(last_run(dir)["status"] == "succeeded");
}

TEST_CASE("hostile: a Lua step and a set step returning byte 255 succeed with U+FFFD", "[hostile][e2e]") {
  TempDir dir;
  dir.write("bytes.lua", "return function(with, flow) return {s = string.char(99, 97, 102, 255)} end\n");
  auto r = run_steps(
      dir,
      "  - {id: lua, lua: " + dir.file("bytes.lua") +
          "}\n"
          "  - {id: set, type: set, with: {v: \"${{ string.char(255) }}\"}}\n"
          "  - {id: echo, type: log, with: {message: \"${{ steps.lua.outputs.s }} ${{ steps.set.outputs.v }}\"}}\n");
  check_handled(r);
  CHECK(r.exit_code == 0);
  CHECK(r.err.find("caf\xEF\xBF\xBD \xEF\xBF\xBD") != std::string::npos);
  CHECK(last_run(dir)["status"] == "succeeded");
}

TEST_CASE("hostile: a workflow file with a byte that is not UTF-8 fails validate at that byte", "[hostile][e2e]") {
  TempDir dir;
  dir.write("bad.yaml", "name: bad\nsteps:\n  - {id: a, type: log, with: {message: \"caf\xFF\"}}\n");
  auto r = run_flowrun({"validate", dir.file("bad.yaml")});
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(dir.file("bad.yaml") + ":3:44: error: the file is not valid UTF-8: byte 0xFF here") !=
        std::string::npos);
}

TEST_CASE("hostile: JSON nested 100,000 deep from exec or HTTP is a permanent step error", "[hostile][e2e]") {
  TempDir dir;
  { std::ofstream(dir.file("deep.json")) << std::string(100000, '['); }
  SimServer sim(Json{{"/deep", Json::array({{{"status", 200}, {"body", std::string(100000, '[')}}})}});
  SECTION("exec parse_json") {
    auto r = run_steps(dir,
                       "  - {id: deep, type: exec, retry: {attempts: 3, on: [transient, exit:1]},\n"
                       "     with: {argv: [cat, \"" +
                           dir.file("deep.json") + "\"], parse_json: true}}\n");
    check_handled(r);
    CHECK(r.exit_code == 1);
    CHECK(r.out.find("JSON nested deeper than 512 levels") != std::string::npos);
    CHECK(r.err.find("attempt 2/3") == std::string::npos);  // permanent: not retried
  }
  SECTION("http body") {
    auto r =
        run_steps(dir, "  - {id: deep, type: http, retry: {attempts: 3}, with: {url: \"" + sim.url("/deep") + "\"}}\n");
    check_handled(r);
    CHECK(r.exit_code == 1);
    CHECK(r.out.find("JSON nested deeper than 512 levels") != std::string::npos);
    CHECK(r.err.find("attempt 2/3") == std::string::npos);
  }
  SECTION("a Lua step returning a table 100,000 deep") {
    dir.write("deep.lua", "return function() local t = {} for i = 1, 100000 do t = {t} end return t end\n");
    auto r = run_steps(dir, "  - {id: deep, lua: " + dir.file("deep.lua") + "}\n");
    check_handled(r);
    CHECK(r.exit_code == 1);
    CHECK(r.out.find("nested too deeply") != std::string::npos);
  }
  SECTION("flow.json.decode") {
    dir.write("decode.lua", "return function(with, flow) return flow.json.decode(string.rep('[', 100000)) end\n");
    auto r = run_steps(dir, "  - {id: deep, lua: " + dir.file("decode.lua") + "}\n");
    check_handled(r);
    CHECK(r.exit_code == 1);
    CHECK(r.out.find("JSON nested deeper than 512 levels") != std::string::npos);
  }
}

TEST_CASE("hostile: a backtracking fail_on regex on a 2 MB log line is linear, not a crash", "[hostile][e2e]") {
  TempDir dir;
  {
    std::ofstream log(dir.file("big.log"));
    log << std::string(2 << 20, 'x') << "\nDONE\n";
  }
  auto r = run_steps(dir,
                     "  - {id: wait, type: wait-for-marker, timeout: 60s,\n"
                     "     with: {interval: 100ms, file: \"" +
                         dir.file("big.log") +
                         "\", marker: DONE, show_logs: none,\n"
                         "            fail_on: [{regex: \"^(x|y)*z\"}], capture: {n: \"(x+)$\"}}}\n");
  check_handled(r);
  CHECK(r.exit_code == 0);
  {
    std::ofstream log(dir.file("big.log"));
    log << std::string(2 << 20, 'x') << "z\nDONE\n";
  }
  r = run_steps(dir,
                "  - {id: wait, type: wait-for-marker, timeout: 60s,\n"
                "     with: {interval: 100ms, file: \"" +
                    dir.file("big.log") +
                    "\", marker: DONE, show_logs: none,\n"
                    "            fail_on: [{regex: \"^(x|y)*z\"}]}}\n");
  check_handled(r);
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("the log matched fail_on '^(x|y)*z'") != std::string::npos);
}

TEST_CASE("hostile: a regex RE2 refuses (a backreference) is a validate error at its line", "[hostile][e2e]") {
  TempDir dir;
  dir.write("re.yaml",
            "name: re\nsteps:\n  - id: wait\n    type: wait-for-marker\n    with:\n"
            "      file: x.log\n      marker: DONE\n      fail_on: [{regex: \"(a)\\\\1\"}]\n");
  auto r = run_flowrun({"validate", dir.file("re.yaml")});
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(dir.file("re.yaml") + ":8:16: error: '(a)\\1' is not a valid regex: invalid escape sequence: \\1") !=
        std::string::npos);
}

TEST_CASE("hostile: durations over 100 years fail validate instead of crashing", "[hostile][e2e]") {
  TempDir dir;
  for (const std::string d : {"99999999999999999999d", "106752d"}) {
    INFO(d);
    dir.write("d.yaml", "name: d\nsteps:\n  - {id: s, type: sleep, timeout: " + d + ", with: {duration: 1ms}}\n");
    auto r = run_flowrun({"validate", dir.file("d.yaml")});
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(dir.file("d.yaml") + ":3:35: error: bad duration '" + d + "' for timeout") != std::string::npos);
  }
}
