#include "engine/runtime/for_each_runner.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <vector>

#include "engine/sandbox/expression.h"
#include "support/harness.h"

using namespace flowrun;
using namespace flowrun::test;

namespace {

// A for_each step loaded from `yaml` (the workflow's last step), run by a ForEachRunner whose
// items are judged by `item` instead of an executor.
struct ForEachFixture {
  Harness h;
  Json outputs;
  std::vector<std::string> printed;
  std::function<void(const std::string&)> print = [this](const std::string& line) { printed.push_back(line); };

  explicit ForEachFixture(const std::string& yaml) { REQUIRE(h.load(yaml) == ""); }
  const Step& step() const { return h.loaded.workflow->steps.back(); }
  Outcome run(ForEachRunner::RunItem item, const Json& scope = Json::object(), bool dry_run = false) {
    StepLog log = h.logs->logger("each");
    ForEachRunner runner(step(), "each", log, h.clock(), {dry_run, &print}, std::move(item));
    return runner.run(scope, h.cancel, outputs);
  }
};

ForEachRunner::RunItem failing(std::set<int> bad, bool in_finally = false) {
  return [bad, in_finally](Json& scope, CancelToken&, const std::string&) {
    if (!bad.count(scope["n"].get<int>())) return Outcome::ok();
    Outcome o = Outcome::failed("bad " + scope["n"].dump());
    o.finally_failed = in_finally;
    return o;
  };
}

}  // namespace

TEST_CASE("for_each runner: each item gets its scope, path and the loop variables", "[for_each_runner]") {
  ForEachFixture f(R"(steps:
  - id: each
    for_each: "${{ {10, 20, 30} }}"
    as: n
    concurrency: 2
    steps:
      - {id: w, type: log, with: {message: hi}}
)");
  std::mutex m;
  std::vector<std::string> seen;
  Outcome o = f.run(
      [&](Json& scope, CancelToken&, const std::string& path) {
        scope["steps"]["w"] = {{"status", "succeeded"}, {"outputs", {{"n", scope["n"]}}}};
        std::lock_guard lock(m);
        seen.push_back(path + "=" + scope["n"].dump() + "@" + scope["loop"]["index"].dump() + "/" +
                       scope["loop"]["count"].dump() + " in " +
                       find_in_scope(scope, "run")->at("id").get<std::string>());
        return Outcome::ok();
      },
      Json{{"run", {{"id", "r1"}}}, {"steps", Json::object()}});
  CHECK(o.is(StepState::kSucceeded));
  std::sort(seen.begin(), seen.end());
  CHECK(seen == std::vector<std::string>{"each[0]=10@0/3 in r1", "each[1]=20@1/3 in r1", "each[2]=30@2/3 in r1"});
  REQUIRE(f.outputs["items"].size() == 3);
  CHECK(f.outputs["items"][1] == Json{{"index", 1},
                                      {"item", 20},
                                      {"status", "succeeded"},
                                      {"steps", {{"w", {{"status", "succeeded"}, {"outputs", {{"n", 20}}}}}}}});
  CHECK(f.outputs["count"] == 3);
  CHECK(f.outputs["succeeded"] == 3);
  CHECK(f.h.log_contains("for_each over 3 items, 2 at a time"));
}

TEST_CASE("for_each runner: failures within tolerance end partial, beyond it stop launching", "[for_each_runner]") {
  SECTION("within") {
    ForEachFixture f(R"(steps:
  - id: each
    for_each: [1, 2, 3, 4]
    as: n
    tolerate: {percent: 50}
    steps:
      - {id: w, type: log, with: {message: hi}}
)");
    Outcome o = f.run(failing({2, 3}));
    CHECK(o.is(StepState::kPartial));
    CHECK(o.error == "2 of 4 items failed");
    CHECK(f.outputs["failed"] == 2);
    CHECK(f.outputs["failed_items"] == Json::array({2, 3}));
    CHECK(f.outputs["items"][1]["error"] == "bad 2");
    CHECK(f.h.log_contains("2 of 4 items failed, within tolerance: the run will end partial"));
  }
  SECTION("beyond") {
    ForEachFixture f(R"(steps:
  - id: each
    for_each: [1, 2, 3, 4]
    as: n
    tolerate: {count: 1}
    steps:
      - {id: w, type: log, with: {message: hi}}
)");
    Outcome o = f.run(failing({1, 2}));
    CHECK(o.is(StepState::kFailed));
    CHECK(o.error == "2 of 4 items failed (tolerating 1)");
    CHECK(f.outputs["not_started"] == 2);
    CHECK(f.outputs["items"][3] == Json{{"index", 3}, {"item", 4}, {"status", "not_started"}});
  }
  SECTION("tolerated as succeeded") {
    ForEachFixture f(R"(steps:
  - id: each
    for_each: [1, 2]
    as: n
    tolerate: {count: 1, outcome: succeeded}
    steps:
      - {id: w, type: log, with: {message: hi}}
)");
    CHECK(f.run(failing({1})).is(StepState::kSucceeded));
    CHECK(f.h.log_contains("1 of 2 items failed, tolerated (tolerate.outcome: succeeded)"));
  }
}

TEST_CASE("for_each runner: a failed finally is never tolerated", "[for_each_runner]") {
  ForEachFixture f(R"(steps:
  - id: each
    for_each: [1, 2, 3]
    as: n
    tolerate: {count: 3}
    steps:
      - {id: w, type: log, with: {message: hi}}
)");
  Outcome o = f.run(failing({2}, true));
  CHECK(o.is(StepState::kFailed));
  CHECK(o.finally_failed);
  CHECK(o.error == "1 of 3 items failed, 1 of them in their finally steps (not tolerated: cleanup did not happen)");
  CHECK(f.h.log_contains("item 1 (2) failed, and so did its finally steps"));
}

TEST_CASE("for_each runner: items and concurrency that cannot be evaluated fail the step", "[for_each_runner]") {
  const char* kNoList = R"(steps:
  - id: each
    for_each: "${{ 'text' }}"
    steps:
      - {id: w, type: log, with: {message: hi}}
)";
  std::atomic<int> ran{0};
  auto count = [&](Json&, CancelToken&, const std::string&) {
    ++ran;
    return Outcome::ok();
  };
  SECTION("not a list") {
    ForEachFixture f(kNoList);
    Outcome o = f.run(count);
    CHECK(o.error == "for_each of step 'each' must give a list, not string");
    CHECK(f.h.log_contains("for_each of step 'each' must give a list, not string"));
    CHECK(f.outputs.is_null());
    CHECK(ran == 0);
  }
  SECTION("a dry run shows one stand-in item for a list it cannot know") {
    ForEachFixture f(R"(steps:
  - {id: earlier, type: log, with: {message: hi}}
  - id: each
    for_each: "${{ steps.earlier.outputs.list }}"
    steps:
      - {id: w, type: log, with: {message: hi}}
)");
    Outcome o = f.run(count, Json{{"steps", Json::object()}}, true);
    CHECK(o.is(StepState::kSucceeded));
    CHECK(f.printed ==
          std::vector<std::string>{"each: its items come from what a dry run does not run; its steps, for one item:"});
    CHECK(f.outputs["items"][0]["item"] == "<an item of each>");
    CHECK(ran == 1);
  }
  SECTION("concurrency") {
    ForEachFixture f(R"(steps:
  - id: each
    for_each: [1]
    concurrency: "${{ 0 }}"
    steps:
      - {id: w, type: log, with: {message: hi}}
)");
    Outcome o = f.run(count);
    CHECK(o.error == "concurrency of step 'each': gave 0, not a whole number of at least 1");
    CHECK(ran == 0);
  }
}

TEST_CASE("for_each runner: the item path and scope helpers", "[for_each_runner]") {
  ForEachFixture f(R"(steps:
  - id: each
    for_each: [a, b]
    as: letter
    steps:
      - {id: w, type: log, with: {message: hi}}
)");
  CHECK(for_each_item_path("outer[1].each", 1) == "outer[1].each[1]");
  const Json outer = {{"inputs", {{"x", 1}}}, {"steps", {{"list", {{"outputs", {{"items", {"a", "b"}}}}}}}}};
  Json scope = for_each_item_scope(f.step(), outer, Json::array({"a", "b"}), 1);
  // The earlier steps and the inputs are reached through the link to the for_each's scope, not copied.
  CHECK(outer_scope(scope) == &outer);
  CHECK(find_in_scope(scope, "inputs") == &outer["inputs"]);
  scope.erase("\x01outer");
  CHECK(scope == Json{{"letter", "b"}, {"loop", {{"index", 1}, {"count", 2}}}, {"steps", Json::object()}});
}
