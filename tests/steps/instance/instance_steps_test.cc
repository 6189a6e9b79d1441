// provision, wait-for-marker and destroy (the log follower under them: logs/log_follower_test.cc).
// The Vast.ai provider is driven by scripted responses in virtual time, so its backoff is
// checked without waiting; the local provider runs real processes.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "engine/io/http_client.h"
#include "steps/instance/logs/file_follower.h"
#include "support/harness.h"
#include "support/sim_server.h"

using namespace flowrun;
using flowrun::test::Harness;
using flowrun::test::SimServer;
using flowrun::test::TempDir;
using namespace std::chrono_literals;

namespace {

struct VastHarness : Harness {
  CurlHttpClient curl;
  VastHarness() { http = &curl; }
};

ExecutorOptions run_named(const std::string& id) {
  ExecutorOptions o;
  o.run_id = id;
  return o;
}

}  // namespace

TEST_CASE("vastai destroy: 429 and 503 are retried with backoff, 404 is success", "[steps][vastai]") {
  SimServer sim(Json::parse(R"J({"DELETE /api/v0/instances/55/": [
      {"status": 429, "body": "API requests too frequent endpoint threshold=3.0"},
      {"status": 503, "json": {"success": false, "error": "server_error", "msg": "busy"}},
      {"status": 404, "json": {"success": false, "error": "not_found", "msg": "Instance not found"}}]})J"));
  VastHarness h;
  REQUIRE(h.load(R"Y(inputs: {url: ""}
steps:
  - id: gone
    type: destroy
    with: {provider: vastai, api_key: secret-key-1, api_url: "${{ inputs.url }}", instance: "55"}
)Y") == "");
  RunResult r = h.run({{"url", sim.url()}});
  REQUIRE(r.status == RunState::kSucceeded);
  CHECK(r.steps["gone"]["outputs"]["already_gone"] == Json::array({"55"}));
  CHECK(h.virtual_clock.sleeps() == std::vector<Duration>{500ms, 1000ms});  // no Retry-After on Vast: backoff
  for (const auto& req : sim.requests()) {
    CHECK(req["headers"]["Authorization"] == "Bearer secret-key-1");
    CHECK(req["query"].get<std::string>().find("secret-key-1") == std::string::npos);
  }
}

TEST_CASE("vastai: a Retry-After, should Vast send one, wins over the shorter backoff", "[steps][vastai]") {
  SimServer sim(Json::parse(R"J({"DELETE /api/v0/instances/56/": [
      {"status": 429, "headers": {"Retry-After": "7"}, "body": "API requests too frequent"},
      {"json": {"success": true}}]})J"));
  VastHarness h;
  REQUIRE(h.load(R"Y(inputs: {url: ""}
steps:
  - id: gone
    type: destroy
    with: {provider: vastai, api_key: k, api_url: "${{ inputs.url }}", instance: "56"}
)Y") == "");
  RunResult r = h.run({{"url", sim.url()}});
  REQUIRE(r.status == RunState::kSucceeded);
  CHECK(r.steps["gone"]["outputs"]["destroyed"] == Json::array({"56"}));
  CHECK(h.virtual_clock.sleeps() == std::vector<Duration>{7s});
}

TEST_CASE("destroy: API trouble is retried with its own backoff until give_up_after, each call with Vast's",
          "[steps][vastai][retry]") {
  SimServer sim(Json::parse(R"J({"DELETE /api/v0/instances/57/": [
      {"status": 503, "json": {"success": false, "error": "server_error", "msg": "busy"}}]})J"));
  VastHarness h;
  REQUIRE(h.load(R"Y(inputs: {url: ""}
steps:
  - id: gone
    type: destroy
    with: {provider: vastai, api_key: k, api_url: "${{ inputs.url }}", instance: "57", give_up_after: 10s}
)Y") == "");
  RunResult r = h.run({{"url", sim.url()}});
  REQUIRE(r.status == RunState::kFailed);
  CHECK(r.error.find("Vast.ai DELETE /api/v0/instances/57/ returned HTTP 503: busy") == 0);
  // Vast's 4 tries (0.5, 1, 2 s apart) = 3.5 s; destroy's 2 s fits in 10 s, the next 4 s does not.
  CHECK(h.virtual_clock.sleeps() == std::vector<Duration>{500ms, 1000ms, 2000ms, 2s, 500ms, 1000ms, 2000ms});
  CHECK(h.log_contains("WARN [gone] Vast.ai DELETE /api/v0/instances/57/ returned HTTP 503: busy; trying again in 2s"));
  CHECK(sim.requests().size() == 8);
}

TEST_CASE("vastai provision: cheapest offer first, falls over when it is gone, waits for running", "[steps][vastai]") {
  SimServer sim(Json::parse(R"J({
    "GET /api/v1/instances/": [{"json": {"success": true, "instances": [], "next_token": null}}],
    "POST /api/v0/bundles/": [{"json": {"offers": [
        {"id": 12, "gpu_name": "RTX 4090", "num_gpus": 1, "dph_total": 0.40, "reliability": 0.99},
        {"id": 11, "gpu_name": "RTX 4090", "num_gpus": 1, "dph_total": 0.30, "reliability": 0.99},
        {"id": 13, "gpu_name": "RTX 4090", "num_gpus": 1, "dph_total": 0.95, "reliability": 0.99}]}}],
    "PUT /api/v0/asks/11/": [{"status": 404, "json": {"success": false, "error": "no_such_ask",
        "msg": "error 404/3603: no_such_ask Instance type by id 11 is not available."}}],
    "PUT /api/v0/asks/12/": [{"json": {"success": true, "new_contract": 9002}}],
    "GET /api/v0/instances/9002/": [
        {"json": {"instances": {"id": 9002, "actual_status": null, "status_msg": null, "label": "flowrun:r1:gpu", "start_date": 1, "extra_env": []}}},
        {"json": {"instances": {"id": 9002, "actual_status": "loading", "status_msg": "pulling", "label": "flowrun:r1:gpu", "start_date": 1, "extra_env": []}}},
        {"json": {"instances": {"id": 9002, "actual_status": "running", "gpu_name": "RTX 4090", "dph_total": 0.40,
                                "label": "flowrun:r1:gpu", "start_date": 1, "extra_env": []}}}]})J"));
  VastHarness h;
  REQUIRE(h.load(R"Y(inputs: {url: ""}
steps:
  - id: gpu
    type: provision
    with:
      provider: vastai
      api_key: k
      api_url: "${{ inputs.url }}"
      gpu_name: RTX 4090
      max_price: 0.5
      start_command: bash /job.sh
      env: {INPUT_VIDEO: a.mp4}
      ready_interval: 10s
)Y") == "");
  RunResult r = h.run({{"url", sim.url()}}, run_named("r1"));
  REQUIRE(r.status == RunState::kSucceeded);
  const Json out = r.steps["gpu"]["outputs"];
  CHECK(out["instance_id"] == "9002");
  CHECK(out["price_per_hour"] == Approx(0.40));
  CHECK(out["instance"]["label"] == "flowrun:r1:gpu");
  CHECK(out["reused"] == false);
  CHECK(h.virtual_clock.sleeps() == std::vector<Duration>{10s, 10s});  // null, loading, running

  Json create;
  for (const auto& req : sim.requests())
    if (req["path"] == "/api/v0/asks/12/") create = Json::parse(req["body"].get<std::string>());
  CHECK(create["label"] == "flowrun:r1:gpu");
  CHECK(create["onstart"] == "bash /job.sh");
  CHECK(create["env"] == Json({{"INPUT_VIDEO", "a.mp4"}}));
  CHECK(h.log_contains("no longer available"));
}

TEST_CASE("vastai provision: re-entry finds its instance by label and rents nothing", "[steps][vastai]") {
  SimServer sim(Json::parse(R"J({
    "GET /api/v1/instances/": [{"json": {"success": true, "next_token": null, "instances": [
        {"id": 77, "actual_status": "running", "label": "flowrun:r2:gpu", "gpu_name": "RTX 4090", "dph_total": 0.3}]}}],
    "GET /api/v0/instances/77/": [{"json": {"instances": {"id": 77, "actual_status": "running", "label": "flowrun:r2:gpu",
        "gpu_name": "RTX 4090", "dph_total": 0.3, "start_date": 1, "extra_env": []}}}]})J"));
  VastHarness h;
  REQUIRE(h.load(R"Y(inputs: {url: ""}
steps:
  - id: gpu
    type: provision
    with: {provider: vastai, api_key: k, api_url: "${{ inputs.url }}", start_command: "true"}
)Y") == "");
  RunResult r = h.run({{"url", sim.url()}}, run_named("r2"));
  REQUIRE(r.status == RunState::kSucceeded);
  CHECK(r.steps["gpu"]["outputs"]["instance_id"] == "77");
  CHECK(r.steps["gpu"]["outputs"]["reused"] == true);
  for (const auto& req : sim.requests()) CHECK(req["method"] == "GET");  // no search, no create
  auto filters = sim.requests()[0]["query"].get<std::string>();
  CHECK(filters.find("select_filters=") != std::string::npos);
}

TEST_CASE("wait-for-marker on a file: captures, validation, fail_on and a missing capture", "[steps][marker]") {
  TempDir dir;
  Harness h;
  auto run_on = [&](const std::string& text) {
    dir.write("job.log", text);
    REQUIRE(h.load(R"Y(inputs: {file: ""}
steps:
  - id: done
    type: wait-for-marker
    with:
      file: "${{ inputs.file }}"
      marker: {regex: "^ALL DONE$"}
      capture:
        result_url: {pattern: "RESULT_URL=(\\S+)", validate: "^https://"}
        frames: {pattern: "frames=(\\d+)", required: false}
      fail_on: [Traceback]
      interval: 5s
      timeout: 1m
)Y") == "");
    return h.run({{"file", dir.file("job.log")}});
  };
  // A value failing `validate` is skipped: the last one that passes stands.
  RunResult ok = run_on("start\nRESULT_URL=https://r/x.mp4\nRESULT_URL=ftp://bad\nALL DONE\n");
  REQUIRE(ok.status == RunState::kSucceeded);
  CHECK(ok.steps["done"]["outputs"]["result_url"] == "https://r/x.mp4");
  CHECK(ok.steps["done"]["outputs"]["marker_line"] == "ALL DONE");
  CHECK_FALSE(ok.steps["done"]["outputs"].contains("frames"));

  RunResult failed = run_on("start\nTraceback (most recent call last):\nALL DONE\n");
  REQUIRE(failed.status == RunState::kFailed);
  CHECK(failed.error.find("the log matched fail_on 'Traceback") != std::string::npos);
  const Json& context = failed.steps["done"]["outputs"]["failure_context"];
  CHECK(std::find(context.begin(), context.end(), Json("Traceback (most recent call last):")) != context.end());

  RunResult missing = run_on("ALL DONE\n");
  REQUIRE(missing.status == RunState::kFailed);
  CHECK(missing.error.find("result_url was never captured") != std::string::npos);

  RunResult timed_out = run_on("still working\n");
  REQUIRE(timed_out.status == RunState::kFailed);
  CHECK(timed_out.error.find("no result after 1m") != std::string::npos);
}

TEST_CASE("wait-for-marker: a capture's rules, the lines around a failure, and log_file", "[steps][marker]") {
  TempDir dir;
  Harness h;
  auto run_on = [&](const std::string& text) {
    dir.write("job.log", text);
    std::filesystem::remove(dir.file("logs/job.log"));
    REQUIRE(h.load(R"Y(inputs: {file: "", log: ""}
steps:
  - id: done
    type: wait-for-marker
    with:
      file: "${{ inputs.file }}"
      marker: ALL DONE
      capture:
        result_url:
          - {pattern: "RESULT_URL=(\\S+)"}
          - {pattern: "https://\\S+", validate: "/(output|both)/"}
      fail_on: [Traceback]
      context_lines: 2
      log_file: "${{ inputs.log }}"
      interval: 5s
      timeout: 1m
)Y") == "");
    return h.run({{"file", dir.file("job.log")}, {"log", dir.file("logs/job.log")}});
  };
  const std::string seed =
      "get https://b/input/a.mp4\nUploading https://b/output/a.mp4 and https://b/logs/a.txt\n"
      "https://b/tmp/z\nALL DONE\nhttps://b/logs/after.txt\n";
  RunResult ok = run_on(seed);
  REQUIRE(ok.status == RunState::kSucceeded);
  CHECK(ok.steps["done"]["outputs"]["result_url"] == "https://b/output/a.mp4");
  CHECK(dir.read("logs/job.log") == seed);  // every line, as read

  RunResult declared = run_on("https://b/output/a.mp4\nRESULT_URL=file:///r/x.json\nALL DONE\n");
  REQUIRE(declared.status == RunState::kSucceeded);
  CHECK(declared.steps["done"]["outputs"]["result_url"] == "file:///r/x.json");

  RunResult failed =
      run_on("a\nb\nc\nTraceback (most recent call last):\n  File \"x.py\", line 1\nValueError: bad\nmore\n");
  REQUIRE(failed.status == RunState::kFailed);
  CHECK(failed.error.rfind("the log matched fail_on 'Traceback': ValueError: bad (permanent)", 0) == 0);
  // The lines around the failure are the failed step's outputs: two before, the line, the rest.
  CHECK(failed.steps["done"]["status"] == "failed");
  CHECK(failed.steps["done"]["outputs"]["failure_context"] ==
        Json::array(
            {"b", "c", "Traceback (most recent call last):", "  File \"x.py\", line 1", "ValueError: bad", "more"}));
}

TEST_CASE("wait-for-marker: a bad regex and a missing source are load errors", "[steps][marker]") {
  auto diags = test::diagnostics_of(R"Y(steps:
  - id: w
    type: wait-for-marker
    with: {marker: x, progress: "(unclosed"}
)Y");
  REQUIRE(diags.size() == 2);
  CHECK(diags[0].find("exactly one of instance, file, url, command") != std::string::npos);
  CHECK(diags[1].find("is not a valid regex") != std::string::npos);
}

TEST_CASE("local provider: an instance that exits before the marker fails the wait and is destroyed",
          "[steps][local]") {
  TempDir dir;
  Harness h;
  h.use_real_clock = true;
  h.state_dir = dir.path();
  REQUIRE(h.load(R"Y(steps:
  - id: gpu
    type: provision
    # It lives a second so that provision sees it running even on a loaded machine.
    with: {start_command: 'echo "$GREETING from $(pwd)"; sleep 1; exit 3', env: {GREETING: hello}, ready_interval: 50ms}
  - id: done
    type: wait-for-marker
    with: {instance: "${{ steps.gpu.outputs.instance }}", marker: NEVER, interval: 100ms, timeout: 10s}
finally:
  - id: cleanup
    type: destroy
    with: {provisioned_by: gpu}
)Y") == "");
  RunResult r = h.run(Json::object(), run_named("r3"));
  REQUIRE(r.status == RunState::kFailed);
  CHECK(r.error.find("exited with code 3") != std::string::npos);
  CHECK(r.error.find("last log line: hello from") != std::string::npos);  // in its own directory
  CHECK(r.steps["cleanup"]["outputs"]["destroyed"].size() == 1);
  CHECK(std::filesystem::is_empty(dir.file("local-instances")));
}

TEST_CASE("provision: a price cap that is not a number fails before anything is rented", "[steps][local]") {
  TempDir dir;
  Harness h;
  h.state_dir = dir.path();
  REQUIRE(h.load(R"Y(inputs: {cap: {default: "cheap"}}
steps:
  - id: gpu
    type: provision
    with: {start_command: "true", max_price: "${{ inputs.cap }}"}
)Y") == "");
  RunResult r = h.run();
  REQUIRE(r.status == RunState::kFailed);
  CHECK(r.error.find("'max_price' must be a number") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.file("local-instances")));
}

TEST_CASE("wait-for-marker, logs not shown: a fail_on line deep in a large log is found, and so is the marker",
          "[steps][marker]") {
  // With show_logs: none and plain-string patterns the file is searched a chunk at a time
  // instead of line by line; the lines that matter must still be found wherever they fall.
  TempDir dir;
  std::string noise;
  for (int i = 0; i < 30000; ++i) noise += "frame " + std::to_string(i) + " encoding at 31.4 fps ..........\n";
  Harness h;
  auto run_on = [&](const std::string& text) {
    dir.write("job.log", text);
    REQUIRE(h.load("steps:\n  - id: done\n    type: wait-for-marker\n    with: {file: " + dir.file("job.log") +
                   ", marker: PIPELINE_DONE, fail_on: [CUDA out of memory, Traceback], show_logs: none, "
                   "interval: 5s, timeout: 1m}\n") == "");
    return h.run();
  };
  RunResult failed = run_on(noise + "RuntimeError: CUDA out of memory (tried 2 GiB)\n" + noise + "PIPELINE_DONE\n");
  REQUIRE(failed.status == RunState::kFailed);
  CHECK(failed.error.find("fail_on 'CUDA out of memory': RuntimeError: CUDA out of memory (tried 2 GiB)") !=
        std::string::npos);

  RunResult ok = run_on(noise + noise + "stage 3 PIPELINE_DONE ok\n" + "after the marker\n");
  REQUIRE(ok.status == RunState::kSucceeded);
  CHECK(ok.steps["done"]["outputs"]["marker_line"] == "stage 3 PIPELINE_DONE ok");

  RunResult waiting = run_on(noise + "PIPELINE_DO");  // the marker's line is not complete yet
  REQUIRE(waiting.status == RunState::kFailed);
  CHECK(waiting.error.find("no result after 1m") != std::string::npos);
}

TEST_CASE("file follower: only appended bytes are read, a partial line waits, rotation and truncation restart",
          "[steps][logs]") {
  TempDir dir;
  const std::string path = dir.file("job.log");
  FileFollower follower;
  std::vector<std::string> lines;
  auto take = [&](std::string_view l) {
    lines.emplace_back(l);
    return true;
  };
  CHECK(follower.follow(path, take).missing);
  dir.write("job.log", "one\ntwo\nthr");
  auto r = follower.follow(path, take);
  CHECK(r.bytes_read == 11);
  CHECK(lines == std::vector<std::string>{"one", "two"});
  {
    std::ofstream append(path, std::ios::app);
    append << "ee\nfour\n";
  }
  r = follower.follow(path, take);
  CHECK(r.bytes_read == 8);  // what was appended, not the whole file
  CHECK(lines == std::vector<std::string>{"one", "two", "three", "four"});
  CHECK(follower.follow(path, take).bytes_read == 0);

  dir.write("job.log", "x\n");  // truncated (shorter than what was read)
  r = follower.follow(path, take);
  CHECK(r.restarted);
  CHECK(lines.back() == "x");

  std::filesystem::rename(path, dir.file("job.log.1"));  // rotated: a new file, even a longer one
  dir.write("job.log", "fresh 1\nfresh 2\nfresh 3\n");
  lines.clear();
  r = follower.follow(path, take);
  CHECK(r.restarted);
  CHECK(lines == std::vector<std::string>{"fresh 1", "fresh 2", "fresh 3"});
}

TEST_CASE("wait-for-marker on a URL: Range requests read only what was appended, a cut log is read again",
          "[steps][marker]") {
  SimServer sim(Json::parse(R"J({"GET /log": [
    {"status": 200, "body": "a\nb\nhal"},
    {"status": 206, "headers": {"Content-Range": "bytes 7-10/11"}, "body": "f\nc\n"},
    {"status": 416, "headers": {"Content-Range": "bytes */11"}, "body": ""},
    {"status": 200, "body": "x\n"},
    {"status": 206, "headers": {"Content-Range": "bytes 2-8/9"}, "body": "MARKER\n"}
  ]})J"));
  CurlHttpClient curl;
  Harness h;
  h.http = &curl;
  REQUIRE(h.load("steps:\n  - {id: w, type: wait-for-marker, with: {url: '" + sim.url("/log") +
                 "', marker: MARKER, interval: 1s, timeout: 1m}}\n") == "");
  RunResult r = h.run();
  REQUIRE(r.status == RunState::kSucceeded);
  std::vector<std::string> ranges;
  for (const auto& req : sim.requests()) ranges.push_back(req["headers"].value("Range", "-"));
  CHECK(ranges == std::vector<std::string>{"-", "bytes=7-", "bytes=11-", "bytes=11-", "bytes=2-"});
  for (const char* line : {"| a", "| b", "| half", "| c", "| x", "| MARKER"}) CHECK(h.log_contains(line));
  CHECK(h.log_contains("truncated or replaced; reading it again from its start"));
}
