// What the for_each runner tells the recorder: the item count, each item's row, live status and
// item_succeeded/item_failed event (with the outputs the for_each output gets), and nothing again
// for an item a resume reuses.
#include <catch2/catch.hpp>

#include "engine/runtime/for_each_runner.h"
#include "support/fake_recorder.h"
#include "support/harness.h"

using namespace flowrun;
using namespace flowrun::test;

namespace {

const char* const kWorkflow = R"(steps:
  - id: each
    for_each: ["a.mp4", "b.mp4", "c.mp4"]
    as: video
    concurrency: 2
    tolerate: {percent: 100}
    steps:
      - {id: w, type: log, with: {message: hi}}
)";

// Items "b.mp4" fail; every item's step `w` outputs a result URL.
Outcome run_items(Harness& h, FakeRecorder& rec, Json& outputs) {
  const Step& step = h.loaded.workflow->steps.back();
  StepLog log = h.logs->logger("each");
  static const std::string path = "each";  // the runner borrows it
  auto print = std::function<void(const std::string&)>([](const std::string&) {});
  ForEachRunner runner(
      step, path, log, h.clock(), {false, &print},
      [](Json& scope, CancelToken&, const std::string&) {
        const std::string v = scope["video"];
        scope["steps"]["w"] = {{"status", "succeeded"}, {"outputs", {{"result_url", "https://x/" + v}}}};
        return v == "b.mp4" ? Outcome::failed("the log matched fail_on") : Outcome::ok();
      },
      &rec);
  return runner.run(Json{{"steps", Json::object()}}, h.cancel, outputs);
}

}  // namespace

TEST_CASE("for_each signals: item events carry item, index, outputs and error, and each item has a live status",
          "[for_each_runner][signals]") {
  Harness h;
  REQUIRE(h.load(kWorkflow) == "");
  FakeRecorder rec;
  Json outputs;
  CHECK(run_items(h, rec, outputs).is(StepState::kPartial));

  CHECK(rec.state("each") == Json({{"items", 3}}));
  const auto succeeded = rec.events("item_succeeded");
  const auto failed = rec.events("item_failed");
  REQUIRE(succeeded.size() == 2);
  REQUIRE(failed.size() == 1);
  const auto& f = failed[0];
  CHECK(f.path == "each[1]");
  CHECK(f.message == "item 1 (b.mp4) failed: the log matched fail_on");
  CHECK(f.data["item"] == "b.mp4");
  CHECK(f.data["index"] == 1);
  CHECK(f.data["error"] == "the log matched fail_on");
  // The same object the for_each output holds for the item.
  CHECK(f.data["outputs"] == outputs["items"][1]["steps"]);
  CHECK(f.data["outputs"]["w"]["outputs"]["result_url"] == "https://x/b.mp4");
  for (const auto& s : succeeded) CHECK(s.data["error"].is_null());

  CHECK(rec.state("each[0]") == Json({{"status", "succeeded"}, {"item", "a.mp4"}}));
  CHECK(rec.state("each[1]") == Json({{"status", "failed"}, {"item", "b.mp4"}}));
  // A live patch at the start (running) and one at the end, per item.
  int running = 0;
  for (const auto& p : rec.patches())
    if (p.patch.value("status", "") == "running") ++running;
  CHECK(running == 3);
  // Each item has its row, finished.
  CHECK(rec.recorded("each[1]")->status == "failed");
  CHECK(rec.recorded("each[2]")->status == "succeeded");
}

TEST_CASE("for_each signals: an item finished before a resume is not reported again", "[for_each_runner][signals]") {
  Harness h;
  REQUIRE(h.load(kWorkflow) == "");
  FakeRecorder rec;
  rec.set_recorded("each[0]", "succeeded");
  rec.set_recorded("each[1]", "failed");  // a failed item runs again, and is reported again
  Json outputs;
  run_items(h, rec, outputs);
  for (const auto& e : rec.events()) CHECK(e.path != "each[0]");
  CHECK(rec.state("each[0]").is_null());
  CHECK(rec.events("item_failed").size() == 1);
  CHECK(rec.events("item_succeeded").size() == 1);
  CHECK(outputs["items"][0]["status"] == "succeeded");
}

TEST_CASE("for_each signals: a long item is shortened to 200 bytes in live patches, whole in events",
          "[for_each_runner][signals]") {
  Harness h;
  const std::string long_item(300, 'x');
  REQUIRE(h.load("steps:\n  - id: each\n    for_each: [\"" + long_item +
                 "\"]\n    as: video\n    steps:\n      - {id: w, type: log, with: {message: hi}}\n") == "");
  FakeRecorder rec;
  Json outputs;
  run_items(h, rec, outputs);
  CHECK(rec.state("each[0]")["item"].get<std::string>().size() == 200);
  REQUIRE(rec.events("item_succeeded").size() == 1);
  CHECK(rec.events("item_succeeded")[0].data["item"] == long_item);
}
