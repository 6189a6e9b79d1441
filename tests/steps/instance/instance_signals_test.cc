// What the instance steps report, on the local provider (real processes): instance_started
// with the simulated price, live patches of provision and of wait-for-marker (progress, last
// line, log tail, once per poll), instance_lost/instance_recovered, instance_destroyed.
#include <catch2/catch.hpp>
#include <fstream>

#include "support/fake_recorder.h"
#include "support/harness.h"
#include "support/sim_server.h"

using namespace flowrun;
using flowrun::test::FakeRecorder;
using flowrun::test::Harness;
using flowrun::test::TempDir;

TEST_CASE("instance signals: started with its price, live progress and log tail, destroyed",
          "[steps][local][signals]") {
  TempDir dir;
  Harness h;
  h.use_real_clock = true;
  h.state_dir = dir.path();
  REQUIRE(h.load(R"Y(steps:
  - id: gpu
    type: provision
    with:
      start_command: 'for i in 1 2 3 4; do echo "frame $i/4"; done; echo "RESULT_URL=https://b/out.mp4"; echo DONE; sleep 30'
      price_per_hour: 1.5
      ready_interval: 50ms
  - id: result
    type: wait-for-marker
    with:
      instance: "${{ steps.gpu.outputs.instance }}"
      marker: DONE
      progress: "frame (\\d+)/(\\d+)"
      capture: {result_url: "RESULT_URL=(\\S+)"}
      interval: 100ms
      timeout: 20s
finally:
  - id: cleanup
    type: destroy
    with: {provisioned_by: gpu}
)Y") == "");
  FakeRecorder rec;
  ExecutorOptions options;
  options.run_id = "sig1";
  options.recorder = &rec;
  RunResult r = h.run(Json::object(), options);
  REQUIRE(r.status == RunState::kSucceeded);
  const std::string id = r.steps["gpu"]["outputs"]["instance_id"];
  CHECK(r.steps["gpu"]["outputs"]["price_per_hour"] == 1.5);

  const auto started = rec.events("instance_started");
  REQUIRE(started.size() == 1);
  CHECK(started[0].path == "gpu");
  CHECK(started[0].data == Json({{"instance", id}, {"price_per_hour", 1.5}, {"gpu", "local"}}));
  CHECK(rec.state("gpu") == Json({{"instance", id}, {"price_per_hour", 1.5}}));

  const Json live = rec.state("result");
  CHECK(live["progress"] == 100.0);
  CHECK(live["progress_text"] == "frame 4/4");
  CHECK(live["instance"] == id);
  CHECK(live["last_line"] == "DONE");
  REQUIRE(live["log_tail"].is_array());
  CHECK(live["log_tail"].back() == "DONE");
  CHECK(live["log_tail"].size() == 6);
  // Once per poll, not once per line: the six lines arrived in one or two reads.
  int result_patches = 0;
  for (const auto& p : rec.patches())
    if (p.path == "result") ++result_patches;
  CHECK(result_patches <= 3);

  const auto destroyed = rec.events("instance_destroyed");
  REQUIRE(destroyed.size() == 1);
  CHECK(destroyed[0].path == "finally.cleanup");
  CHECK(destroyed[0].data == Json({{"instance", id}}));
}

TEST_CASE("instance signals: a lost instance is reported, and so is its replacement", "[steps][local][signals]") {
  TempDir dir;
  Harness h;
  h.use_real_clock = true;
  h.state_dir = dir.path();
  REQUIRE(h.load(R"Y(inputs: {flag: ""}
steps:
  - id: gpu
    type: provision
    with:
      start_command: 'if [ -e "$FLAG" ]; then echo DONE; sleep 30; else touch "$FLAG"; echo dying; sleep 1; exit 1; fi'
      env: {FLAG: "${{ inputs.flag }}"}
      price_per_hour: 2
      ready_interval: 50ms
  - id: result
    type: wait-for-marker
    with: {instance: "${{ steps.gpu.outputs.instance }}", marker: DONE, interval: 100ms, timeout: 20s, max_recoveries: 1}
finally:
  - id: cleanup
    type: destroy
    with: {provisioned_by: gpu}
)Y") == "");
  FakeRecorder rec;
  ExecutorOptions options;
  options.run_id = "sig2";
  options.recorder = &rec;
  RunResult r = h.run({{"flag", dir.file("flag")}}, options);
  REQUIRE(r.status == RunState::kSucceeded);
  const auto lost = rec.events("instance_lost");
  const auto back = rec.events("instance_recovered");
  REQUIRE(lost.size() == 1);
  REQUIRE(back.size() == 1);
  const std::string first = r.steps["gpu"]["outputs"]["instance_id"];
  CHECK(lost[0].path == "result");
  CHECK(lost[0].data["instance"] == first);
  CHECK(lost[0].data["reason"].get<std::string>().find("exited") != std::string::npos);
  CHECK(back[0].data["instance"] != first);
  CHECK(back[0].data["lost"] == first);
  // The replacement was rented (and costs) from the waiting step; the old one was destroyed there.
  const auto started = rec.events("instance_started");
  REQUIRE(started.size() == 2);
  CHECK(started[1].path == "result");
  CHECK(started[1].data["instance"] == back[0].data["instance"]);
  CHECK(started[1].data["price_per_hour"] == 2.0);
  CHECK(rec.state("result")["instance"] == back[0].data["instance"]);
  bool old_destroyed = false;
  for (const auto& e : rec.events("instance_destroyed")) old_destroyed |= e.data["instance"] == first;
  CHECK(old_destroyed);
}

TEST_CASE("instance signals: the live log tail is the last 20 lines read, also where nothing is shown",
          "[steps][signals]") {
  TempDir dir;
  std::string log;
  for (int i = 1; i <= 500; ++i) log += "frame " + std::to_string(i) + " " + std::string(500, 'x') + "\n";
  dir.write("job.log", log + "ALL DONE\n");
  Harness h;
  REQUIRE(h.load(R"Y(inputs: {file: ""}
steps:
  - id: done
    type: wait-for-marker
    with: {file: "${{ inputs.file }}", marker: ALL DONE, show_logs: none, interval: 5s, timeout: 1m}
)Y") == "");
  FakeRecorder rec;
  ExecutorOptions options;
  options.recorder = &rec;
  // show_logs none and no log_file: the prefilter rules out runs of lines, which the tail still has.
  REQUIRE(h.run({{"file", dir.file("job.log")}}, options).status == RunState::kSucceeded);
  const Json tail = rec.state("done")["log_tail"];
  REQUIRE(tail.size() == 20);
  CHECK(tail[0] == "frame 482 " + std::string(400 - 10, 'x'));  // at most 400 bytes a line
  CHECK(tail[18].get<std::string>().rfind("frame 500 ", 0) == 0);
  CHECK(tail[19] == "ALL DONE");
}

namespace {

// Appends the next batch of lines to the log after each live patch of the monitor, that is
// after each of its polls, and keeps the state each poll left.
class GrowingLog final : public ForwardingRecorder {
 public:
  GrowingLog(std::unique_ptr<FakeRecorder> inner, std::string file, std::vector<std::string> batches)
      : ForwardingRecorder(std::move(inner)), file_(std::move(file)), batches_(std::move(batches)) {}
  void live(const std::string& path, const Json& patch) override {
    ForwardingRecorder::live(path, patch);
    if (path != "done") return;
    patches.push_back(patch);
    if (states) tails.push_back(states->state(path)["log_tail"]);
    if (next_ < batches_.size()) {
      std::ofstream(file_, std::ios::app) << batches_[next_++];
    }
  }
  FakeRecorder* states = nullptr;  // the inner recorder, to read the state each poll left
  std::vector<Json> patches, tails;

 private:
  std::string file_;
  std::vector<std::string> batches_;
  size_t next_ = 0;
};

std::string numbered_lines(int from, int to) {
  std::string out;
  for (int i = from; i <= to; ++i) out += "line " + std::to_string(i) + "\n";
  return out;
}

// What a wait-for-marker step `done` (its YAML after `type:`) reported over a log that starts
// with lines 1-3 and gets `batches` appended, one after each live patch.
struct GrowingRun {
  std::vector<Json> patches, tails;  // each live patch, and the state's log_tail after it
  Json last_tail;
};
GrowingRun run_on_growing_log(const std::string& step, std::vector<std::string> batches) {
  TempDir dir;
  dir.write("job.log", numbered_lines(1, 3));
  Harness h;
  REQUIRE(h.load("inputs: {file: \"\"}\nsteps:\n  - id: done\n    type: wait-for-marker\n" + step) == "");
  auto fake = std::make_unique<FakeRecorder>();
  FakeRecorder& states = *fake;
  GrowingLog rec(std::move(fake), dir.file("job.log"), std::move(batches));
  rec.states = &states;
  ExecutorOptions options;
  options.recorder = &rec;
  REQUIRE(h.run({{"file", dir.file("job.log")}}, options).status == RunState::kSucceeded);
  return {rec.patches, rec.tails, states.state("done")["log_tail"]};
}

}  // namespace

TEST_CASE("instance signals: a poll's few new lines are added to the live tail, which the monitor does not keep",
          "[steps][signals]") {
  const GrowingRun r = run_on_growing_log(
      R"Y(    with: {file: "${{ inputs.file }}", marker: ALL DONE, show_logs: none, interval: 5s, timeout: 1m}
)Y",
      {numbered_lines(4, 5), numbered_lines(6, 35), "ALL DONE\n"});
  REQUIRE(r.patches.size() == 4);
  // A poll of fewer than 20 lines sends only them; the state holds the lines before.
  CHECK(r.patches[1][kLogTailAdded]["lines"] == Json({"line 4", "line 5"}));
  CHECK_FALSE(r.patches[1].contains("log_tail"));
  CHECK(r.tails[0] == Json({"line 1", "line 2", "line 3"}));
  CHECK(r.tails[1] == Json({"line 1", "line 2", "line 3", "line 4", "line 5"}));
  // A poll of 20 lines or more sends the whole tail.
  REQUIRE(r.patches[2]["log_tail"].size() == 20);
  CHECK(r.patches[2]["log_tail"][0] == "line 16");
  REQUIRE(r.last_tail.size() == 20);
  CHECK(r.last_tail[0] == "line 17");
  CHECK(r.last_tail[18] == "line 35");
  CHECK(r.last_tail[19] == "ALL DONE");
}

TEST_CASE("instance signals: a retried attempt's first report replaces the tail, it does not add to it",
          "[steps][signals]") {
  // Attempt 1 polls at 0 s and 5 s and times out at 7 s; attempt 2 reads the log from its start.
  const GrowingRun r = run_on_growing_log(R"Y(    attempt_timeout: 7s
    retry: {attempts: 2, on: [timeout], backoff: {initial: 1s}}
    with: {file: "${{ inputs.file }}", marker: ALL DONE, show_logs: none, interval: 5s}
)Y",
                                          {numbered_lines(4, 5), numbered_lines(6, 6), "ALL DONE\n"});
  REQUIRE(r.patches.size() == 4);
  CHECK(r.tails[1] == Json({"line 1", "line 2", "line 3", "line 4", "line 5"}));  // attempt 1, second poll
  // Attempt 2's first poll read the log from its start: those lines are the tail, once.
  CHECK(r.patches[2]["log_tail"] == Json({"line 1", "line 2", "line 3", "line 4", "line 5", "line 6"}));
  CHECK(r.last_tail == Json({"line 1", "line 2", "line 3", "line 4", "line 5", "line 6", "ALL DONE"}));
}
