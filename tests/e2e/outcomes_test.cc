// End-to-end: truthful outcomes and exit codes, usage errors, dry runs and output modes, with
// the real flowrun binary.
#include <catch2/catch.hpp>
#include <filesystem>
#include <sstream>

#include "engine/io/json.h"
#include "support/run_cli.h"
#include "support/sim_server.h"

using flowrun::Json;
using flowrun::test::CliResult;
using flowrun::test::newest_run_status;
using flowrun::test::run_flowrun;
using flowrun::test::TempDir;

namespace {

// A for_each over three items where the items named in `failing` fail; `tolerate` as written.
std::string three_items(const std::string& tolerate, const std::string& failing) {
  return "name: items\nsteps:\n"
         "  - id: each\n    for_each: [a, b, c]\n    as: it\n" +
         (tolerate.empty() ? "" : "    tolerate: " + tolerate + "\n") +
         "    steps:\n"
         "      - {id: work, type: exec, with: {argv: [sh, -c, 'case \"$0\" in " +
         failing + ") echo \"no luck for $0\" >&2; exit 5;; esac', \"${{ it }}\"]}}\n";
}

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("outcomes: every item failing without tolerance fails the run, exit 1", "[e2e][outcomes]") {
  TempDir dir;
  dir.write("w.yaml", three_items("", "a|b|c"));
  CliResult r = run_flowrun({dir.file("w.yaml"), "--state-dir", dir.file("state")});
  INFO(r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.out.find(" failed in ") != std::string::npos);
  CHECK(newest_run_status(dir.file("state")) == "failed");
}

TEST_CASE("outcomes: tolerated item failures end the run partial, exit 3, and say which", "[e2e][outcomes]") {
  TempDir dir;
  dir.write("w.yaml", three_items("{count: 1}", "b"));
  CliResult r = run_flowrun({dir.file("w.yaml"), "--state-dir", dir.file("state")});
  INFO(r.err);
  CHECK(r.exit_code == 3);
  CHECK(r.out.find(" partial in ") != std::string::npos);
  CHECK(r.out.find("each[1].work: sh exited with code 5: no luck for b") != std::string::npos);
  CHECK(newest_run_status(dir.file("state")) == "partial");
  // The error once where it happened and once in the summary; the item warning does not repeat it.
  CHECK(count(r.err, "no luck for b") == 2);  // the program's own stderr line, and the step's error
  CHECK(count(r.out, "no luck for b") == 1);
  CHECK(r.err.find("item 1 (b) failed") != std::string::npos);
  // A partial run is over: resume refuses it with a hint.
  std::string id = flowrun::test::newest_run_id(dir.file("state"));
  CliResult resume = run_flowrun({"resume", id, "--state-dir", dir.file("state")});
  CHECK(resume.exit_code == 2);
  CHECK(resume.err.find("already ended partial") != std::string::npos);
}

TEST_CASE("outcomes: tolerate with outcome: succeeded keeps the run succeeded, exit 0", "[e2e][outcomes]") {
  TempDir dir;
  dir.write("w.yaml", three_items("{count: 1, outcome: succeeded}", "b"));
  CliResult r = run_flowrun({dir.file("w.yaml"), "--state-dir", dir.file("state")});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(newest_run_status(dir.file("state")) == "succeeded");
}

TEST_CASE("outcomes: a failed finally step fails the run, even under tolerate, and is named first", "[e2e][outcomes]") {
  TempDir dir;
  dir.write("w.yaml", R"Y(name: cleanup
steps:
  - id: each
    for_each: [a, b]
    as: it
    tolerate: {percent: 100}
    steps:
      - {id: work, type: exec, with: {argv: [sh, -c, 'exit 1']}}
    finally:
      - {id: destroy, type: exec, with: {argv: [sh, -c, 'echo "instance of $0 not destroyed" >&2; exit 7', "${{ it }}"]}}
)Y");
  CliResult r = run_flowrun({dir.file("w.yaml"), "--state-dir", dir.file("state")});
  INFO(r.err);
  CHECK(r.exit_code == 1);
  CHECK(newest_run_status(dir.file("state")) == "failed");
  // The first failure listed is a finally step.
  auto failed_at = r.out.find("  failed:\n");
  REQUIRE(failed_at != std::string::npos);
  std::string first = r.out.substr(failed_at + 10, r.out.find('\n', failed_at + 10) - failed_at - 10);
  CHECK(first.find(".finally.destroy (finally): sh exited with code 7: instance of") != std::string::npos);
}

TEST_CASE("outcomes: a failed workflow finally step fails a run whose steps succeeded", "[e2e][outcomes]") {
  TempDir dir;
  dir.write("w.yaml",
            "steps:\n  - {id: ok, type: log, with: {message: fine}}\n"
            "finally:\n  - {id: destroy, type: exec, with: {argv: [sh, -c, 'exit 9']}}\n");
  CliResult r = run_flowrun({dir.file("w.yaml"), "--state-dir", dir.file("state")});
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("finally.destroy (finally): sh exited with code 9") != std::string::npos);
}

TEST_CASE("outcomes: a step after a failure runs only when its if asks (always(), failure())", "[e2e][outcomes]") {
  TempDir dir;
  dir.write("w.yaml", R"Y(steps:
  - {id: boom, type: exec, with: {argv: [sh, -c, 'exit 2']}}
  - {id: plain, type: log, with: {message: "plain ran"}}
  - {id: after_failure, type: log, if: "failure()", with: {message: "failure ran: ${{ steps.boom.outcome }}"}}
  - {id: always_runs, type: log, if: "${{ always() }}", with: {message: "always ran"}}
  - {id: on_success, type: log, if: "success()", with: {message: "success ran"}}
)Y");
  CliResult r = run_flowrun({dir.file("w.yaml"), "--state-dir", dir.file("state")});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("plain ran") == std::string::npos);
  CHECK(r.err.find("failure ran: failed") != std::string::npos);
  CHECK(r.err.find("always ran") != std::string::npos);
  CHECK(r.err.find("success ran") == std::string::npos);
}

TEST_CASE("usage errors exit 2 with one line and a hint", "[e2e][cli]") {
  TempDir dir;
  dir.write("w.yaml",
            "inputs:\n  n: 5\n  rate: 0.5\n  when: {default: 10s, type: duration}\n"
            "steps:\n  - {id: a, type: log, with: {message: \"${{ inputs.n }}\"}}\n");
  const std::string w = dir.file("w.yaml");
  const std::vector<std::vector<std::string>> cases = {
      {w, "--bogus"},
      {w, "--log-format", "xml"},
      {"runs", "-n", "abc"},
      {"service"},
      {w, "--every"},
      {w, "--set", "n=abc"},
      {w, "--set", "rate=nan"},
      {w, "--set", "rate=inf"},
      {w, "--set", "n=5abc"},
      {w, "--set", "when=soon"},
      {w, "--set", "nosuch=1"},
      {"service", "unit", w, "--every", "5m", "--set", "nosuch=1"},
      {"resume"},
  };
  for (const auto& args : cases) {
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    CliResult r = run_flowrun(args, {{"FLOWRUN_STATE_DIR", dir.file("state")}});
    INFO(joined << "\n" << r.err);
    CHECK(r.exit_code == 2);
    CHECK_FALSE(r.err.empty());
  }
  CliResult typed = run_flowrun({w, "--set", "n=abc"}, {{"FLOWRUN_STATE_DIR", dir.file("state")}});
  CHECK(typed.err.find(w + ":2:3: error: --set n=abc: input 'n' takes a whole number such as 5") != std::string::npos);
  CliResult unit = run_flowrun({"service", "unit", w, "--every", "5m", "--set", "nosuch=1"});
  CHECK(unit.out.empty());  // no unit that would fail on every restart
  CliResult bogus = run_flowrun({w, "--bogus"});
  CHECK(bogus.err.find("hint:") != std::string::npos);
}

TEST_CASE("dry run exits 0 on every shipped workflow and runs nothing", "[e2e][dryrun]") {
  TempDir dir;
  int seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator("workflows")) {
    if (entry.path().extension() != ".yaml") continue;
    ++seen;
    CliResult r = run_flowrun({entry.path().string(), "--dry-run"}, {{"FLOWRUN_STATE_DIR", dir.file("state")}});
    INFO(entry.path().string() << "\n" << r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.err.find("ERROR") == std::string::npos);
  }
  CHECK(seen >= 4);
  // A dry run of the video batch rents nothing: the for_each body is shown for a stand-in item.
  CliResult video =
      run_flowrun({"workflows/video_batch.yaml", "--dry-run"}, {{"FLOWRUN_STATE_DIR", dir.file("state")}});
  CHECK(video.out.find("videos[0].gpu (provision)") != std::string::npos);
  CHECK(video.out.find("<an item of videos>") != std::string::npos);
  // A required input nobody gave stands in as <name>; a real run still refuses it.
  CliResult monitor =
      run_flowrun({"workflows/monitor_instance.yaml", "--dry-run"}, {{"FLOWRUN_STATE_DIR", dir.file("state")}});
  CHECK(monitor.out.find("<instance_id>") != std::string::npos);
  CHECK(run_flowrun({"workflows/monitor_instance.yaml"}, {{"FLOWRUN_STATE_DIR", dir.file("state")}}).exit_code == 2);
}

TEST_CASE("quiet (-q): nothing on success, the failure summary on failure", "[e2e][output]") {
  TempDir dir;
  dir.write("ok.yaml", "steps:\n  - {id: a, type: exec, with: {argv: [echo, hello]}}\n");
  dir.write("bad.yaml", "steps:\n  - {id: a, type: exec, with: {argv: [sh, -c, 'exit 3']}}\n");
  CliResult ok = run_flowrun({dir.file("ok.yaml"), "-q"}, {{"FLOWRUN_STATE_DIR", dir.file("state")}});
  CHECK(ok.exit_code == 0);
  CHECK(ok.out.empty());
  CHECK(ok.err.empty());
  CliResult bad = run_flowrun({dir.file("bad.yaml"), "-q"}, {{"FLOWRUN_STATE_DIR", dir.file("state")}});
  CHECK(bad.exit_code == 1);
  CHECK(bad.out.find("a: sh exited with code 3") != std::string::npos);
}

TEST_CASE("JSON output (--log-format json): only JSON lines, the summary included", "[e2e][output]") {
  TempDir dir;
  dir.write("w.yaml", "steps:\n  - {id: a, type: exec, with: {argv: [sh, -c, 'echo out; echo err >&2; exit 4']}}\n");
  CliResult r = run_flowrun({dir.file("w.yaml"), "--log-format", "json"}, {{"FLOWRUN_STATE_DIR", dir.file("state")}});
  CHECK(r.exit_code == 1);
  Json summary;
  for (const std::string* stream : {&r.out, &r.err}) {
    std::istringstream lines(*stream);
    std::string line;
    while (std::getline(lines, line)) {
      INFO(line);
      Json parsed = Json::parse(line, nullptr, false);
      CHECK_FALSE(parsed.is_discarded());
      if (parsed.value("event", "") == "run_finished") summary = parsed;
    }
  }
  CHECK(summary["status"] == "failed");
  CHECK(summary["failed"][0]["path"] == "a");
  // Diagnostics too.
  dir.write("bad.yaml", "steps:\n  - {id: a, type: lgo}\n");
  CliResult invalid = run_flowrun({dir.file("bad.yaml"), "--log-format", "json"});
  CHECK(invalid.exit_code == 2);
  Json diag = Json::parse(invalid.err.substr(0, invalid.err.find('\n')), nullptr, false);
  CHECK(diag["line"] == 2);
}

TEST_CASE("NO_COLOR and FORCE_COLOR decide the colour of the log", "[e2e][output]") {
  TempDir dir;
  dir.write("w.yaml", "steps:\n  - {id: a, type: log, with: {message: hi}}\n");
  CliResult forced =
      run_flowrun({dir.file("w.yaml")}, {{"FORCE_COLOR", "1"}, {"FLOWRUN_STATE_DIR", dir.file("state")}});
  CHECK(forced.err.find("\x1b[") != std::string::npos);
  CliResult none = run_flowrun({dir.file("w.yaml")},
                               {{"FORCE_COLOR", "1"}, {"NO_COLOR", "1"}, {"FLOWRUN_STATE_DIR", dir.file("state")}});
  CHECK(none.err.find("\x1b[") == std::string::npos);
}

TEST_CASE("an unset secret is named only by a step that failed for want of it", "[e2e][output]") {
  TempDir dir;
  dir.write("w.yaml", R"Y(secrets: [CLOUD_KEY_FOR_TEST]
inputs: {use: false}
steps:
  - {id: a, type: log, with: {message: hi}}
  - id: needs
    if: ${{ inputs.use }}
    type: http
    with: {url: "http://127.0.0.1:9/", headers: {x-api-key: "${{ secrets.CLOUD_KEY_FOR_TEST }}"}, timeout: 1s}
)Y");
  CliResult unused = run_flowrun({dir.file("w.yaml")}, {{"FLOWRUN_STATE_DIR", dir.file("state")}});
  CHECK(unused.exit_code == 0);
  CHECK(unused.err.find("CLOUD_KEY_FOR_TEST") == std::string::npos);
}

TEST_CASE("env: at workflow and step level reaches expressions and programs, --env-file sets it", "[e2e][env]") {
  TempDir dir;
  dir.write("w.yaml", R"Y(secrets: [TOKEN_FROM_FILE]
env: {GREETING: "hello ${{ inputs.who }}", SHARED: workflow}
inputs: {who: world}
steps:
  - {id: show, type: exec, env: {SHARED: step}, with: {argv: [sh, -c, 'echo "$GREETING/$SHARED/$TOKEN_FROM_FILE"']}}
  - {id: after, type: log, with: {message: "shared is ${{ env.SHARED }}"}}
)Y");
  dir.write("vars.env", "# secrets\nexport TOKEN_FROM_FILE='abcd-1234'\n\n");
  CliResult r = run_flowrun({dir.file("w.yaml"), "--env-file", dir.file("vars.env"), "-v"},
                            {{"FLOWRUN_STATE_DIR", dir.file("state")}});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.err.find("| hello world/step/***") != std::string::npos);  // the secret is redacted
  CHECK(r.err.find("abcd-1234") == std::string::npos);
  CHECK(r.err.find("shared is workflow") != std::string::npos);  // a step's env ends with the step
  dir.write("bad.env", "not a pair\n");
  CliResult bad = run_flowrun({dir.file("w.yaml"), "--env-file", dir.file("bad.env")});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find(dir.file("bad.env") + ":1: expected NAME=value") != std::string::npos);
}
