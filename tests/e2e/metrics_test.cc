// End-to-end: Prometheus metrics of real runs, from the journal (what `flowrun serve` shows at
// /metrics) and from a monitor's own --metrics endpoint, every line checked as exposition format.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <thread>

#include "engine/io/cancel_token.h"
#include "engine/io/http_client.h"
#include "engine/io/sqlite_db.h"
#include "engine/journal/journal.h"
#include "engine/metrics/journal_metrics.h"
#include "support/exposition.h"
#include "support/run_cli.h"
#include "support/sim_server.h"

using flowrun::Json;
using flowrun::test::CliResult;
using flowrun::test::Exposition;
using flowrun::test::FlowrunProcess;
using flowrun::test::parse_exposition;
using flowrun::test::run_flowrun;
using flowrun::test::TempDir;

namespace {

// One retry (exit 3 once, counted in a file of the temp dir) and one tolerated item failure
// (exit 5): the run ends partial.
const char* kWorkflow = R"Y(name: metered
steps:
  - id: flaky
    type: exec
    retry: {attempts: 3, on: ["exit:3"], backoff: {initial: 10ms, factor: 1, jitter: none}}
    with:
      argv: [sh, -c, 'n=$(cat "$0" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$0"; [ $n -ge 2 ] || exit 3', "${{ inputs.counter }}"]
  - id: each
    for_each: [a, b, c]
    tolerate: {count: 1}
    steps:
      - {id: work, type: exec, with: {argv: [sh, -c, '[ "$0" != b ] || exit 5', "${{ item }}"]}}
inputs:
  counter: {required: true}
)Y";

// A TCP socket on 127.0.0.1 (port 0: any free one); listening when asked.
struct Socket {
  int fd = -1;
  int port = 0;
  explicit Socket(bool listening) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
    if (listening) ::listen(fd, 1);
  }
  ~Socket() { ::close(fd); }
};

int64_t count_events(const std::string& journal_path, const std::string& kind) {
  flowrun::SqliteDb db(journal_path, false);
  return db.query("SELECT COUNT(*) AS n FROM events WHERE kind = ?", Json::array({kind}))[0]["n"].get<int64_t>();
}

std::string scrape(const std::string& url) {
  flowrun::CurlHttpClient http;
  flowrun::HttpRequest request;
  request.url = url;
  request.timeout = std::chrono::seconds(5);
  flowrun::CancelToken never;
  try {
    auto response = http.send(request, never);
    return response.status == 200 ? response.body : "";
  } catch (const std::exception&) {
    return "";  // not listening yet
  }
}

}  // namespace

TEST_CASE("metrics e2e: the journal's exposition counts what a real run did, every line valid", "[e2e][metrics]") {
  TempDir dir;
  dir.write("w.yaml", kWorkflow);
  CliResult r =
      run_flowrun({dir.file("w.yaml"), "--set", "counter=" + dir.file("count"), "--state-dir", dir.file("state")});
  INFO(r.err);
  REQUIRE(r.exit_code == 3);

  auto journal = flowrun::Journal::open(dir.file("state"));
  const std::string text = flowrun::journal_exposition(*journal, flowrun::wall_clock_ms());
  INFO(text);
  const Exposition e = parse_exposition(text);
  for (const auto& error : e.errors) UNSCOPED_INFO(error);
  CHECK(e.errors.empty());
  CHECK(e.value("flowrun_runs_total", {{"workflow", "metered"}, {"outcome", "partial"}}) == 1);
  CHECK(e.value("flowrun_step_retries_total", {{"type", "exec"}, {"error_kind", "exit:3"}}) == 1);
  CHECK(e.value("flowrun_step_failures_total", {{"type", "exec"}, {"error_kind", "exit:5"}}) == 1);
  // As many as the run journaled (for_each reports its items once engine/runtime does).
  const int64_t item_failed = count_events(journal->path(), "item_failed");
  CHECK(e.value("flowrun_items_total", {{"outcome", "failed"}}) == (item_failed ? item_failed : -1));
  CHECK(e.value("flowrun_stalls_total") == 0);
  CHECK(e.value("flowrun_instances_running") == 0);
  CHECK(text.find(dir.path()) == std::string::npos);  // no path or item value in a label
}

TEST_CASE("metrics e2e: a monitor serves its runs' metrics at --metrics, and SIGTERM stops it", "[e2e][metrics]") {
  TempDir dir;
  dir.write("w.yaml", kWorkflow);
  const int port = Socket(false).port;  // free a moment ago
  const std::string address = "127.0.0.1:" + std::to_string(port);
  FlowrunProcess monitor({dir.file("w.yaml"), "--set", "counter=" + dir.file("count"), "--every", "1s", "--metrics",
                          address, "--state-dir", dir.file("state")});
  const std::string url = "http://" + address + "/metrics";
  std::string text;
  Exposition e;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < give_up) {
    text = scrape(url);
    e = parse_exposition(text);
    if (e.value("flowrun_runs_total", {{"workflow", "metered"}, {"outcome", "partial"}}) >= 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  monitor.signal(SIGTERM);
  CliResult r = monitor.wait();
  INFO(r.err);
  INFO(text);
  for (const auto& error : e.errors) UNSCOPED_INFO(error);
  CHECK(e.errors.empty());
  CHECK(r.exit_code == 0);
  CHECK(r.err.find("metrics at " + url) != std::string::npos);
  const double ticks = e.value("flowrun_runs_total", {{"workflow", "metered"}, {"outcome", "partial"}});
  REQUIRE(ticks >= 1);
  // The first tick retried once; later ones find the counter file past 2 and do not.
  CHECK(e.value("flowrun_step_retries_total", {{"type", "exec"}, {"error_kind", "exit:3"}}) == 1);
  // Item b fails in every tick; a scrape may fall between a tick's failure and its end.
  const double failures = e.value("flowrun_step_failures_total", {{"type", "exec"}, {"error_kind", "exit:5"}});
  CHECK(failures >= ticks);
  CHECK(failures <= ticks + 1);
  // Each finished tick: flaky (2 attempts in the first, 1 later) and three items, one attempt each.
  const double attempts = e.value("flowrun_step_attempts_total", {{"type", "exec"}});
  CHECK(attempts >= 4 * ticks + 1);
  CHECK(e.value("flowrun_step_duration_seconds_count", {{"type", "exec"}}) >= 4 * ticks);
  CHECK(e.types.count("flowrun_notifications_total") == 1);
  CHECK(e.types.at("flowrun_step_duration_seconds") == "histogram");
}

TEST_CASE("metrics e2e: a bad, public or busy --metrics address is a usage error and nothing runs", "[e2e][metrics]") {
  TempDir dir;
  dir.write("w.yaml", kWorkflow);
  const std::vector<std::string> run = {dir.file("w.yaml"), "--set", "counter=" + dir.file("count"), "--state-dir",
                                        dir.file("state")};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = run;
    args.insert(args.end(), extra.begin(), extra.end());
    return run_flowrun(args);
  };
  CliResult bad = with({"--metrics", "nonsense"});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("--metrics expects HOST:PORT such as 127.0.0.1:9464, got 'nonsense'") != std::string::npos);
  CliResult remote = with({"--metrics", "10.1.2.3:9464"});
  CHECK(remote.exit_code == 2);
  CHECK(remote.err.find("is not a loopback address") != std::string::npos);
  CHECK(remote.err.find("--metrics-public") != std::string::npos);
  CliResult v6 = with({"--metrics", "[::1]:9464"});
  CHECK(v6.exit_code == 2);
  CHECK(v6.err.find("IPv6 is not supported here") != std::string::npos);
  CliResult lonely = with({"--metrics-public"});
  CHECK(lonely.exit_code == 2);
  CHECK(lonely.err.find("--metrics-public needs --metrics HOST:PORT") != std::string::npos);
  Socket taken(true);
  CliResult busy = with({"--metrics", "127.0.0.1:" + std::to_string(taken.port)});
  CHECK(busy.exit_code == 2);
  CHECK(busy.err.find("cannot listen there") != std::string::npos);
  CHECK(flowrun::test::newest_run_id(dir.file("state")).empty());
}
