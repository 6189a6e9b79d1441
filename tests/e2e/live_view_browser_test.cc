// End-to-end in a browser: headless Chromium opens the live view of a running video_batch (local
// provider, a slow job) and the test reads the DOM its script built: one row per item with the
// status and progress the journal holds, and the totals. A screenshot is kept under the build
// folder (test-artifacts/live_view.png). Skipped, with a message, where Chromium is missing.
#include <signal.h>

#include <array>
#include <catch2/catch.hpp>
#include <cstdio>
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
using flowrun::test::TempDir;
using namespace std::chrono_literals;

namespace {

const char* const kChromium = "/usr/bin/chromium";

// Runs headless Chromium on `url` with `extra` switches; its stdout (the DOM with --dump-dom).
std::string chromium(const std::string& url, const std::string& extra, const std::string& profile) {
  const std::string command = std::string("timeout 90 ") + kChromium +
                              " --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage"
                              " --no-first-run --disable-extensions --user-data-dir='" +
                              profile + "' --virtual-time-budget=6000 " + extra + " '" + url + "' 2>/dev/null";
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe);
  std::array<char, 4096> buf{};
  for (size_t n; (n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0;) out.append(buf.data(), n);
  ::pclose(pipe);
  return out;
}

// The items of the first for_each of a run view, when all of them are running with a progress.
bool all_running_with_progress(const Json& view) {
  if (!view.contains("for_each") || view["for_each"].empty()) return false;
  const Json& items = view["for_each"][0]["items"];
  if (items.size() != 3) return false;
  for (const auto& item : items)
    if (item["status"] != "running" || !item["progress"].is_number()) return false;
  return true;
}

}  // namespace

TEST_CASE("live view in headless Chromium shows each item's status and progress and the totals",
          "[e2e][serve][browser]") {
  if (!std::filesystem::exists(kChromium)) {
    WARN("skipped: no Chromium at " << kChromium << " (tools/install-deps.sh installs it)");
    return;
  }
  TempDir dir;
  std::filesystem::create_directories(dir.file("videos"));
  for (const char* name : {"alpha.mp4", "bravo.mp4", "charlie.mp4"})
    dir.write(std::string("videos/") + name, std::string("frames of ") + name);
  const unsigned short port = free_port();
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  // Each stage of the job takes 30 s: the items sit at their first progress line while the
  // browser looks.
  FlowrunProcess run(
      {std::string(FLOWRUN_SOURCE_DIR) + "/workflows/video_batch.yaml", "--set", "input_dir=" + dir.file("videos"),
       "--set", "output_dir=" + dir.file("out"), "--set", "poll_interval=200ms", "--set", "concurrency=3", "--set",
       "local_price=0.42", "--serve", "127.0.0.1:" + std::to_string(port)},
      {{"FLOWRUN_STATE_DIR", dir.file("state")}, {"JOB_STAGE_DELAY", "30"}});

  std::string run_id;
  Json view;
  for (int i = 0; i < 300 && !all_running_with_progress(view); ++i) {
    std::this_thread::sleep_for(100ms);
    if (run_id.empty()) {
      Fetched runs = fetch("GET", base + "/api/runs");
      if (runs.status == 200 && !Json::parse(runs.body)["runs"].empty())
        run_id = Json::parse(runs.body)["runs"][0]["id"];
      continue;
    }
    Fetched f = fetch("GET", base + "/api/runs/" + run_id);
    if (f.status == 200) view = Json::parse(f.body);
  }
  INFO(view.dump(2));
  REQUIRE(all_running_with_progress(view));

  const std::string dom = chromium(base + "/runs/" + run_id, "--dump-dom", dir.file("profile"));
  INFO(dom.substr(0, 4000));
  // Each row as the page's script made it, against the journal's view of the same item.
  std::map<int, std::pair<std::string, std::string>> rows;
  const std::regex row("<tr data-item=\"(\\d+)\" data-path=\"[^\"]*\" data-status=\"(\\w+)\" data-progress=\"(\\d+)\"");
  for (auto it = std::sregex_iterator(dom.begin(), dom.end(), row); it != std::sregex_iterator(); ++it)
    rows[std::stoi((*it)[1])] = {(*it)[2], (*it)[3]};
  REQUIRE(rows.size() == 3);
  for (const auto& item : view["for_each"][0]["items"]) {
    const int index = item["index"];
    CHECK(rows[index].first == "running");
    CHECK(rows[index].second == std::to_string(static_cast<int>(std::lround(item["progress"].get<double>()))));
  }
  CHECK(std::regex_search(dom, std::regex("id=\"totals\"[^>]*>.*?data-running=\"3\"")));
  CHECK(std::regex_search(dom, std::regex("id=\"totals\"[^>]*>.*?data-items=\"3\"")));
  CHECK(dom.find("data-failed=\"0\"") != std::string::npos);
  CHECK(dom.find("<button id=\"cancel\" type=\"button\">") != std::string::npos);  // shown: the run is running

  const auto artifacts = std::filesystem::path(FLOWRUN_BINARY).parent_path() / "test-artifacts";
  std::filesystem::create_directories(artifacts);
  const auto shot = artifacts / "live_view.png";
  std::filesystem::remove(shot);
  chromium(base + "/runs/" + run_id, "--screenshot=" + shot.string() + " --window-size=1280,900 --hide-scrollbars",
           dir.file("profile"));
  CHECK(std::filesystem::exists(shot));
  CHECK(std::filesystem::file_size(shot) > 10'000);

  // The cancel button's request ends the run; its finally steps destroy every instance.
  Fetched page = fetch("GET", base + "/runs/" + run_id);
  std::smatch m;
  REQUIRE(std::regex_search(page.body, m, std::regex("name=\"flowrun-csrf\" content=\"([0-9a-f]+)\"")));
  CHECK(fetch("POST", base + "/api/runs/" + run_id + "/cancel", {{"X-Flowrun-Csrf", m[1]}}).status == 202);
  CliResult r = run.wait();
  INFO(r.err);
  CHECK(flowrun::test::newest_run_status(dir.file("state")) == "cancelled");
  CHECK(std::filesystem::is_empty(dir.file("state/local-instances")));
}
