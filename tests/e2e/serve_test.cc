// End-to-end: `flowrun serve` and `--serve` with the real binary: the token and listen rules, the
// cancel POST's protections, and a cancel from the view that runs the finally steps (of a run its
// owner is running, and of a detached run nobody owns).
#include <signal.h>

#include <catch2/catch.hpp>
#include <regex>
#include <thread>

#include "engine/io/json.h"
#include "support/http_fetch.h"
#include "support/run_cli.h"
#include "support/sim_server.h"

using flowrun::Json;
using flowrun::test::CliResult;
using flowrun::test::fetch;
using flowrun::test::Fetched;
using flowrun::test::FlowrunProcess;
using flowrun::test::free_port;
using flowrun::test::run_flowrun;
using flowrun::test::TempDir;
using namespace std::chrono_literals;

namespace {

const char* const kSlowWorkflow = R"(version: 1
name: slow_serve
inputs:
  marker: {required: true}
steps:
  - id: wait
    type: exec
    with: {argv: [sleep, "60"]}
finally:
  - id: cleanup
    type: exec
    with: {argv: [sh, -c, 'echo cleaned > "$1"', sh, "${{ inputs.marker }}"]}
)";

// Polls `url` until `ready` holds for its answer (or 15 s pass); the last answer.
template <class Ready>
Fetched wait_for(const std::string& url, const std::map<std::string, std::string>& headers, Ready ready) {
  Fetched f;
  for (int i = 0; i < 150; ++i) {
    f = fetch("GET", url, headers);
    if (ready(f)) break;
    std::this_thread::sleep_for(100ms);
  }
  return f;
}

std::string csrf_of(const std::string& page) {
  std::smatch m;
  REQUIRE(std::regex_search(page, m, std::regex("name=\"flowrun-csrf\" content=\"([0-9a-f]+)\"")));
  return m[1];
}

bool has_run_with_status(const Fetched& f, const std::string& status) {
  if (f.status != 200) return false;
  const Json overview = Json::parse(f.body);
  for (const auto& run : overview["runs"])
    if (run["status"] == status) return true;
  return false;
}

}  // namespace

TEST_CASE("flowrun serve refuses a non-loopback listen address without a token", "[e2e][serve]") {
  TempDir dir;
  const std::map<std::string, std::string> env{{"FLOWRUN_STATE_DIR", dir.file("state")}};
  CliResult r = run_flowrun({"serve", "--listen", "0.0.0.0:0"}, env);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("refusing to serve on 0.0.0.0:0 without --token") != std::string::npos);
  r = run_flowrun({"serve", "--listen", "nonsense"}, env);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--listen expects HOST:PORT") != std::string::npos);

  // The same rule for a run's own view, before anything of the run starts.
  dir.write("wf.yaml", kSlowWorkflow);
  r = run_flowrun({dir.file("wf.yaml"), "--set", "marker=" + dir.file("m"), "--serve", "0.0.0.0:0"}, env);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("refusing to serve on 0.0.0.0:0 without --token") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.file("m")));
}

TEST_CASE("a run served with --serve and a token is cancelled from the view, which runs its finally steps",
          "[e2e][serve]") {
  TempDir dir;
  dir.write("wf.yaml", kSlowWorkflow);
  const unsigned short port = free_port();
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  FlowrunProcess run({dir.file("wf.yaml"), "--set", "marker=" + dir.file("cleaned"), "--serve",
                      "127.0.0.1:" + std::to_string(port), "--token", "tok-123"},
                     {{"FLOWRUN_STATE_DIR", dir.file("state")}});
  const std::map<std::string, std::string> auth{{"Authorization", "Bearer tok-123"}};
  Fetched runs = wait_for(base + "/api/runs", auth, [](const Fetched& f) { return has_run_with_status(f, "running"); });
  INFO(runs.status << " " << runs.body);
  REQUIRE(has_run_with_status(runs, "running"));
  const std::string run_id = Json::parse(runs.body)["runs"][0]["id"];
  const std::string cancel = base + "/api/runs/" + run_id + "/cancel";

  CHECK(fetch("GET", base + "/api/runs").status == 401);
  CHECK(fetch("GET", base + "/").status == 401);
  Fetched page = fetch("GET", base + "/", auth);
  REQUIRE(page.status == 200);
  CHECK(page.body.find("tok-123") == std::string::npos);  // the token is never in the page
  const std::string csrf = csrf_of(page.body);

  // Without the token, even with the CSRF value: refused.
  CHECK(fetch("POST", cancel, {{"X-Flowrun-Csrf", csrf}}).status == 401);
  // With the token but as a cross-site form would send it: refused.
  CHECK(fetch("POST", cancel,
              {{"Authorization", "Bearer tok-123"}, {"Content-Type", "application/x-www-form-urlencoded"}}, "confirm=1")
            .status == 403);
  CHECK(fetch("POST", cancel,
              {{"Authorization", "Bearer tok-123"}, {"X-Flowrun-Csrf", csrf}, {"Origin", "https://evil.example"}})
            .status == 403);
  std::this_thread::sleep_for(1500ms);  // the owner watches for requests every second: none came
  CHECK(has_run_with_status(fetch("GET", base + "/api/runs", auth), "running"));

  // The cookie from /?token=T works like the header, and the page's value cancels.
  Fetched visit = fetch("GET", base + "/?token=tok-123");
  CHECK(visit.status == 303);
  CHECK(visit.headers.find("Set-Cookie: flowrun_token=tok-123; Path=/; HttpOnly; SameSite=Strict") !=
        std::string::npos);
  Fetched cancelled = fetch("POST", cancel, {{"Cookie", "flowrun_token=tok-123"}, {"X-Flowrun-Csrf", csrf}});
  CHECK(cancelled.status == 202);
  CHECK(Json::parse(cancelled.body)["cancel"] == "requested");

  CliResult r = run.wait();
  INFO(r.err);
  CHECK(r.err.find("live view: " + base + "/") != std::string::npos);
  CHECK(r.out.find("cancelled") != std::string::npos);
  CHECK(flowrun::test::newest_run_status(dir.file("state")) == "cancelled");
  CHECK(dir.read("cleaned") == "cleaned\n");  // finally ran: cleaned up, not detached
}

TEST_CASE("flowrun serve cancels a detached run nobody owns by starting flowrun cancel", "[e2e][serve]") {
  TempDir dir;
  dir.write("wf.yaml", kSlowWorkflow);
  const std::map<std::string, std::string> env{{"FLOWRUN_STATE_DIR", dir.file("state")}};
  CliResult detached = run_flowrun({dir.file("wf.yaml"), "--set", "marker=" + dir.file("cleaned")}, env, 1500ms);
  REQUIRE(flowrun::test::newest_run_status(dir.file("state")) == "detached");
  REQUIRE_FALSE(std::filesystem::exists(dir.file("cleaned")));
  const std::string run_id = flowrun::test::newest_run_id(dir.file("state"));

  const unsigned short port = free_port();
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  FlowrunProcess serve({"serve", "--listen", "127.0.0.1:" + std::to_string(port)}, env);
  Fetched page = wait_for(base + "/runs/" + run_id, {}, [](const Fetched& f) { return f.status == 200; });
  REQUIRE(page.status == 200);
  Fetched view = fetch("GET", base + "/api/runs/" + run_id);
  CHECK(Json::parse(view.body)["run"]["status"] == "detached");
  // A request naming another host (a rebound DNS name) is refused.
  CHECK(fetch("GET", base + "/api/runs", {{"Host", "evil.example:" + std::to_string(port)}}).status == 403);

  Fetched cancelled = fetch("POST", base + "/api/runs/" + run_id + "/cancel", {{"X-Flowrun-Csrf", csrf_of(page.body)}});
  CHECK(cancelled.status == 202);
  CHECK(Json::parse(cancelled.body)["cancel"] == "started");
  Fetched after = wait_for(base + "/api/runs/" + run_id, {}, [](const Fetched& f) {
    return f.status == 200 && Json::parse(f.body)["run"]["status"] == "cancelled";
  });
  CHECK(Json::parse(after.body)["run"]["status"] == "cancelled");
  CHECK(dir.read("cleaned") == "cleaned\n");
  // An ended run cannot be cancelled again.
  CHECK(fetch("POST", base + "/api/runs/" + run_id + "/cancel", {{"X-Flowrun-Csrf", csrf_of(page.body)}}).status ==
        409);
  serve.signal(SIGTERM);
  CHECK(serve.wait().exit_code == 0);
}
