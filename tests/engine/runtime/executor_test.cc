#include "engine/runtime/executor.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "engine/io/fiber_scheduler.h"
#include "engine/io/step_error.h"
#include "support/harness.h"
#include "support/process_threads.h"

using namespace flowrun;

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FLOWRUN_HAS_ASAN 1
#endif
#endif
#ifndef FLOWRUN_HAS_ASAN
#define FLOWRUN_HAS_ASAN 0
#endif
using flowrun::test::Harness;
using flowrun::test::LambdaPoller;
using flowrun::test::LambdaStep;
using namespace std::chrono_literals;

namespace {
// A step type that fails with `error` for its first `failures` calls, then succeeds.
void add_flaky(Harness& h, const std::string& name, int failures, StepError error, std::atomic<int>& calls) {
  h.registry.add(std::make_unique<LambdaStep>(name, [failures, error, &calls](StepContext& ctx) -> Json {
    int n = ++calls;
    if (n <= failures) throw error;
    return {{"calls", n}, {"attempt", ctx.attempt()}};
  }));
}

std::vector<std::string> statuses(const RunResult& r) {
  std::vector<std::string> out;
  for (const auto& rec : r.records) out.push_back(rec.path + "=" + to_string(rec.status));
  return out;
}
}  // namespace

TEST_CASE("sequence: outputs of a step are visible to later steps", "[executor]") {
  Harness h;
  REQUIRE(h.load(R"(inputs: {n: 4}
steps:
  - {id: a, type: set, with: {double: "${{ inputs.n * 2 }}"}}
  - {id: b, type: set, with: {plus_one: "${{ steps.a.outputs.double + 1 }}"}}
)") == "");
  RunResult r = h.run();
  CHECK(r.status == RunState::kSucceeded);
  CHECK(r.steps["b"]["outputs"]["plus_one"] == 9);
}

TEST_CASE("for_each: items read earlier steps through their for_each's scope, nested ones too", "[executor]") {
  Harness h;
  REQUIRE(h.load(R"(steps:
  - {id: base, type: set, with: {k: 10, list: [1, 2]}}
  - id: outer
    for_each: ${{ steps.base.outputs.list }}
    as: x
    concurrency: 2
    steps:
      - {id: mid, type: set, with: {v: "${{ steps.base.outputs.k + x }}"}}
      - id: inner
        for_each: [100, 200]
        as: y
        steps:
          - {id: leaf, type: set, with: {sum: "${{ steps.base.outputs.k + steps.mid.outputs.v + y }}"}}
          - id: seen
            type: set
            with:
              ids: "${{ (function() local t = {} for k in pairs(steps) do t[#t + 1] = k end table.sort(t) return table.concat(t, ',') end)() }}"
              json: "${{ fromJSON(toJSON(steps)).leaf.outputs.sum }}"
)") == "");
  RunResult r = h.run();
  REQUIRE(r.status == RunState::kSucceeded);
  const Json& items = r.steps["outer"]["outputs"]["items"];
  REQUIRE(items.size() == 2);
  CHECK(items[1]["steps"]["mid"]["outputs"]["v"] == 12);
  const Json& inner = items[1]["steps"]["inner"]["outputs"]["items"];
  REQUIRE(inner.size() == 2);
  CHECK(inner[1]["steps"]["leaf"]["outputs"]["sum"] == 10 + 12 + 200);
  // pairs and toJSON see the item's own steps and every outer scope's.
  CHECK(inner[1]["steps"]["seen"]["outputs"]["ids"] == "base,inner,leaf,mid,outer,seen");
  CHECK(inner[1]["steps"]["seen"]["outputs"]["json"] == 222);
  // An item's result holds its own steps only.
  CHECK_FALSE(items[1]["steps"].contains("base"));
}

TEST_CASE("for_each: what an item's steps change in env and run stays the item's", "[executor][for_each]") {
  Harness h;
  h.registry.add(std::make_unique<LambdaStep>("fail_on_a", [](StepContext& ctx) -> Json {
    if (ctx.with()["x"] == "a") throw StepError::permanent("bad item");
    return {};
  }));
  // What a program the step starts would get over the process's environment.
  h.registry.add(std::make_unique<LambdaStep>("program_env", [](StepContext& ctx) -> Json {
    return {{"env", ctx.env ? *ctx.env : Json()}};
  }));
  REQUIRE(h.load(R"(env: {WHERE: workflow}
inputs: {n: 7}
steps:
  - id: each
    for_each: [a, b]
    as: x
    concurrency: 1
    tolerate: {count: 1}
    steps:
      - id: scoped
        env: {WHERE: "item ${{ x }}"}
        type: program_env
      - {id: boom, type: fail_on_a, with: {x: "${{ x }}"}}
      - id: after
        if: ${{ always() }}
        type: set
        with: {where: "${{ env.WHERE }}", status: "${{ run.status }}", n: "${{ inputs.n }}"}
      - {id: plain, if: "${{ always() }}", type: program_env}
  - {id: last, if: "${{ always() }}", type: set, with: {where: "${{ env.WHERE }}", status: "${{ run.status }}"}}
)") == "");
  RunResult r = h.run();
  CHECK(r.status == RunState::kPartial);
  const Json& items = r.steps["each"]["outputs"]["items"];
  REQUIRE(items.size() == 2);
  for (int i = 0; i < 2; ++i) {
    const std::string x = i == 0 ? "a" : "b";
    INFO(x);
    CHECK(items[i]["steps"]["scoped"]["outputs"]["env"]["WHERE"] == "item " + x);
    CHECK(items[i]["steps"]["plain"]["outputs"]["env"]["WHERE"] == "workflow");
    CHECK(items[i]["steps"]["after"]["outputs"]["where"] == "workflow");
    CHECK(items[i]["steps"]["after"]["outputs"]["n"] == 7);
  }
  // Item a's failure is its own run.status; item b and the steps after the for_each never saw it.
  CHECK(items[0]["steps"]["after"]["outputs"]["status"] == "failed");
  CHECK(items[1]["steps"]["after"]["outputs"]["status"] == "running");
  CHECK(r.steps["last"]["outputs"]["where"] == "workflow");
  CHECK(r.steps["last"]["outputs"]["status"] == "running");
}

TEST_CASE("if: a false condition skips the step", "[executor]") {
  Harness h;
  REQUIRE(h.load(R"(steps:
  - {id: a, type: set, with: {go: false}}
  - {id: b, type: set, if: "steps.a.outputs.go", with: {x: 1}}
  - {id: c, type: set, if: "${{ not steps.a.outputs.go }}", with: {x: 2}}
)") == "");
  RunResult r = h.run();
  CHECK(statuses(r) == std::vector<std::string>{"a=succeeded", "b=skipped", "c=succeeded"});
  CHECK(r.steps["b"]["status"] == "skipped");
}

TEST_CASE("retry: attempts and the backoff sequence, in virtual time", "[executor][policy]") {
  Harness h;
  std::atomic<int> calls{0};
  add_flaky(h, "flaky", 5, StepError::transient("503"), calls);
  REQUIRE(h.load(R"(steps:
  - id: a
    type: flaky
    retry: {attempts: 7, on: [transient], backoff: {initial: 5s, factor: 2, max: 60s, jitter: none}}
)") == "");
  RunResult r = h.run();
  CHECK(r.status == RunState::kSucceeded);
  CHECK(calls == 6);
  CHECK(r.records[0].attempts == 6);
  CHECK(h.virtual_clock.sleeps() == std::vector<Duration>{5s, 10s, 20s, 40s, 60s});
  CHECK(h.log_contains("WARN [a] attempt 1/7 failed (transient): 503; retrying in 5s"));
  CHECK(h.log_contains("INFO [a] succeeded on attempt 6/7"));
}

TEST_CASE("retry gives up when attempts run out and reports the last error", "[executor][policy]") {
  Harness h;
  std::atomic<int> calls{0};
  add_flaky(h, "flaky", 10, StepError::exit(3, "tool exited with code 3"), calls);
  REQUIRE(
      h.load("steps:\n  - {id: a, type: flaky, retry: {attempts: 3, on: [\"exit:3\"], backoff: {initial: 1s}}}\n") ==
      "");
  RunResult r = h.run();
  CHECK(r.status == RunState::kFailed);
  CHECK(calls == 3);
  CHECK(r.error == "tool exited with code 3 (exit:3); gave up after 3 attempts");
}

TEST_CASE("errors whose kind is not in `on` are not retried", "[executor][policy]") {
  Harness h;
  std::atomic<int> calls{0};
  add_flaky(h, "flaky", 10, StepError::permanent("bad request"), calls);
  REQUIRE(h.load("steps:\n  - {id: a, type: flaky, retry: {attempts: 5, on: [transient]}}\n") == "");
  RunResult r = h.run();
  CHECK(r.status == RunState::kFailed);
  CHECK(calls == 1);
}

TEST_CASE("Retry-After from the server sets the delay", "[executor][policy]") {
  Harness h;
  std::atomic<int> calls{0};
  add_flaky(h, "limited", 1, StepError::http(429, "rate limited", Duration(7s)), calls);
  REQUIRE(
      h.load("steps:\n  - {id: a, type: limited, retry: {attempts: 3, on: [http_429], backoff: {initial: 1s}}}\n") ==
      "");
  CHECK(h.run().status == RunState::kSucceeded);
  CHECK(h.virtual_clock.sleeps() == std::vector<Duration>{7s});
  CHECK(h.log_contains("retrying in 7s (server's Retry-After)"));
}

TEST_CASE("defaults: steps inherit the workflow's retry policy", "[executor][policy]") {
  Harness h;
  std::atomic<int> calls{0};
  add_flaky(h, "flaky", 2, StepError::transient("x"), calls);
  REQUIRE(h.load(R"(defaults:
  retry: {attempts: 3, backoff: {initial: 2s, factor: 3}}
steps:
  - {id: a, type: flaky}
)") == "");
  CHECK(h.run().status == RunState::kSucceeded);
  CHECK(h.virtual_clock.sleeps() == std::vector<Duration>{2s, 6s});
}

TEST_CASE("timeout is one deadline over all retries", "[executor][policy]") {
  Harness h;
  std::atomic<int> calls{0};
  h.registry.add(std::make_unique<LambdaStep>("slow_fail", [&](StepContext& ctx) -> Json {
    ++calls;
    ctx.sleep(20s);  // each attempt burns 20 s of virtual time, then fails
    throw StepError::transient("still broken");
  }));
  REQUIRE(h.load(R"(steps:
  - id: a
    type: slow_fail
    timeout: 1m
    retry: {attempts: 100, backoff: {initial: 5s, factor: 1}}
)") == "");
  RunResult r = h.run();
  CHECK(r.status == RunState::kFailed);
  // 20 + 5 + 20 + 5 = 50 s; the third attempt is cut at 60 s by the deadline.
  CHECK(calls == 3);
  CHECK(r.error.rfind("timed out after 1m (timeout 1m, 3 attempts)", 0) == 0);
}

TEST_CASE("attempt_timeout bounds one attempt and a retry follows", "[executor][policy]") {
  Harness h;
  std::atomic<int> calls{0};
  h.registry.add(std::make_unique<LambdaStep>("hangs_once", [&](StepContext& ctx) -> Json {
    if (++calls == 1) ctx.sleep(1h);  // cut short by the 10 s attempt deadline
    return {{"ok", true}};
  }));
  REQUIRE(h.load(R"(steps:
  - {id: a, type: hangs_once, attempt_timeout: 10s, retry: {attempts: 2, on: [timeout], backoff: {initial: 1s}}}
)") == "");
  RunResult r = h.run();
  CHECK(r.status == RunState::kSucceeded);
  CHECK(calls == 2);
  CHECK(h.virtual_clock.sleeps() == std::vector<Duration>{10s, 1s});
}

TEST_CASE("finally runs after a failure, and the run reports the first failure", "[executor][finally]") {
  Harness h;
  h.registry.add(
      std::make_unique<LambdaStep>("boom", [](StepContext&) -> Json { throw StepError::permanent("boom"); }));
  REQUIRE(h.load(R"(steps:
  - {id: a, type: boom}
  - {id: never, type: set, with: {x: 1}}
finally:
  - {id: cleanup, type: set, with: {saw: "${{ run.status }}", why: "${{ run.error }}"}}
)") == "");
  RunResult r = h.run();
  CHECK(r.status == RunState::kFailed);
  CHECK(r.error == "boom (permanent)");
  CHECK(statuses(r) == std::vector<std::string>{"a=failed", "finally.cleanup=succeeded"});
  CHECK(r.steps["cleanup"]["outputs"]["saw"] == "failed");
  CHECK(r.steps["cleanup"]["outputs"]["why"] == "boom (permanent)");
}

TEST_CASE("finally runs on cancel, a second cancel stops it too", "[executor][finally]") {
  Harness h;
  h.use_real_clock = true;
  std::atomic<int> cleanups{0};
  h.registry.add(std::make_unique<LambdaStep>("wait_forever", [&](StepContext& ctx) -> Json {
    ctx.sleep(1h);
    return {};
  }));
  h.registry.add(std::make_unique<LambdaStep>("count_cleanup", [&](StepContext&) -> Json {
    ++cleanups;
    return {};
  }));
  REQUIRE(h.load(R"(steps:
  - {id: wait, type: wait_forever}
finally:
  - {id: cleanup, type: count_cleanup}
)") == "");
  Duration took{0};
  RunResult r = h.run_cancelled_after(50ms, &took);
  CHECK(took < 1s);
  CHECK(r.status == RunState::kCancelled);
  CHECK(cleanups == 1);
  CHECK(statuses(r) == std::vector<std::string>{"wait=cancelled", "finally.cleanup=succeeded"});
}

TEST_CASE("finally on a group runs once after the group, even when it fails", "[executor][finally]") {
  Harness h;
  h.registry.add(std::make_unique<LambdaStep>("boom", [](StepContext&) -> Json { throw StepError::permanent("x"); }));
  REQUIRE(h.load(R"(steps:
  - id: g
    steps:
      - {id: a, type: boom}
    finally:
      - {id: undo, type: set, with: {done: true}}
  - {id: after, type: set, with: {x: 1}}
)") == "");
  RunResult r = h.run();
  CHECK(r.status == RunState::kFailed);
  CHECK(statuses(r) == std::vector<std::string>{"g.a=failed", "g.finally.undo=succeeded", "g=failed"});
}

TEST_CASE("continue_on_error lets the sequence go on", "[executor]") {
  Harness h;
  h.registry.add(std::make_unique<LambdaStep>("boom", [](StepContext&) -> Json { throw StepError::permanent("x"); }));
  REQUIRE(h.load(R"(steps:
  - {id: a, type: boom, continue_on_error: true}
  - {id: b, type: set, with: {prev: "${{ steps.a.status }}"}}
)") == "");
  RunResult r = h.run();
  CHECK(r.status == RunState::kPartial);  // a failure was tolerated, not undone
  CHECK(r.steps["b"]["outputs"]["prev"] == "failed");
}

TEST_CASE("for_each: every item runs, at most `concurrency` at a time", "[executor][for_each]") {
  Harness h;
  h.use_real_clock = true;
  std::atomic<int> running{0}, peak{0}, total{0};
  h.registry.add(std::make_unique<LambdaStep>("work", [&](StepContext& ctx) -> Json {
    int now = ++running;
    int p = peak.load();
    while (now > p && !peak.compare_exchange_weak(p, now)) {
    }
    ctx.sleep(20ms);  // a step waits through its context: its item's fiber parks, the others go on
    --running;
    ++total;
    return {{"doubled", ctx.with()["n"].get<int>() * 2}};
  }));
  REQUIRE(h.load(R"(steps:
  - id: each
    for_each: "${{ {1, 2, 3, 4, 5, 6, 7, 8} }}"
    as: n
    concurrency: 3
    steps:
      - {id: w, type: work, with: {n: "${{ n }}"}}
)") == "");
  RunResult r = h.run();
  CHECK(r.status == RunState::kSucceeded);
  CHECK(total == 8);
  CHECK(peak <= 3);
  CHECK(peak >= 2);
  const Json& items = r.steps["each"]["outputs"]["items"];
  REQUIRE(items.size() == 8);
  CHECK(items[7]["steps"]["w"]["outputs"]["doubled"] == 16);
  CHECK(r.steps["each"]["outputs"]["succeeded"] == 8);
}

TEST_CASE("for_each: a failure stops new items unless tolerated, per-item finally always runs",
          "[executor][for_each]") {
  Harness h;
  std::atomic<int> cleanups{0};
  h.registry.add(std::make_unique<LambdaStep>("fail_on_two", [](StepContext& ctx) -> Json {
    if (ctx.with()["n"] == 2) throw StepError::permanent("bad item");
    return {};
  }));
  h.registry.add(std::make_unique<LambdaStep>("cleanup", [&](StepContext&) -> Json {
    ++cleanups;
    return {};
  }));
  const char* yaml = R"(steps:
  - id: each
    for_each: [1, 2, 3, 4]
    as: n
    %s
    steps:
      - {id: w, type: fail_on_two, with: {n: "${{ n }}"}}
    finally:
      - {id: c, type: cleanup}
)";
  char buf[1024];
  std::snprintf(buf, sizeof buf, yaml, "concurrency: 1");
  REQUIRE(h.load(buf) == "");
  RunResult r = h.run();
  CHECK(r.status == RunState::kFailed);
  CHECK(r.error == "1 of 4 items failed");
  CHECK(cleanups == 2);  // items 1 and 2 ran; 3 and 4 never started
  CHECK(r.steps["each"]["outputs"]["not_started"] == 2);

  Harness tolerant;
  std::atomic<int> tolerant_cleanups{0};
  tolerant.registry.add(std::make_unique<LambdaStep>("fail_on_two", [](StepContext& ctx) -> Json {
    if (ctx.with()["n"] == 2) throw StepError::permanent("bad item");
    return {};
  }));
  tolerant.registry.add(std::make_unique<LambdaStep>("cleanup", [&](StepContext&) -> Json {
    ++tolerant_cleanups;
    return {};
  }));
  std::snprintf(buf, sizeof buf, yaml, "tolerate: {count: 1}");
  REQUIRE(tolerant.load(buf) == "");
  RunResult t = tolerant.run();
  CHECK(t.status == RunState::kPartial);  // tolerated is not the same as succeeded
  CHECK(tolerant_cleanups == 4);
  CHECK(t.steps["each"]["outputs"]["failed_items"] == Json({2}));
}

TEST_CASE("polling steps: the executor owns the loop", "[executor][poll]") {
  Harness h;
  std::atomic<int> polls{0};
  h.registry.add(std::make_unique<LambdaPoller>("ready_at_5", [&](StepContext&) {
    PollResult r;
    r.status = ++polls >= 5 ? PollStatus::kDone : PollStatus::kPending;
    r.outputs = {{"polls", polls.load()}};
    return r;
  }));
  REQUIRE(h.load("steps:\n  - {id: p, type: ready_at_5, with: {interval: 30s}}\n") == "");
  RunResult r = h.run();
  CHECK(r.status == RunState::kSucceeded);
  CHECK(r.steps["p"]["outputs"]["polls"] == 5);
  CHECK(h.virtual_clock.sleeps() == std::vector<Duration>{30s, 30s, 30s, 30s});
}

TEST_CASE("expression errors at run time name the step and the file", "[executor]") {
  Harness h;
  REQUIRE(h.load("steps:\n  - {id: a, type: set, with: {x: \"${{ nil + 1 }}\"}}\n") == "");
  RunResult r = h.run();
  CHECK(r.status == RunState::kFailed);
  CHECK(r.error.rfind(
            "test.yaml:2: parameters of step 'a': in ${{ nil + 1 }}: attempt to perform arithmetic on a nil value",
            0) == 0);
}

TEST_CASE("dry run prints resolved parameters and runs nothing with side effects", "[executor]") {
  Harness h;
  std::atomic<int> calls{0};
  h.registry.add(std::make_unique<LambdaStep>("effect", [&](StepContext&) -> Json {
    ++calls;
    return {};
  }));
  REQUIRE(h.load(R"(inputs: {n: 2}
steps:
  - {id: a, type: set, with: {x: "${{ inputs.n + 1 }}"}}
  - {id: b, type: effect, with: {value: "${{ steps.a.outputs.x }}"}}
  - {id: c, type: effect, with: {later: "${{ steps.b.outputs.y }}"}}
)") == "");
  std::vector<std::string> printed;
  ExecutorOptions options;
  options.dry_run = true;
  options.print = [&](const std::string& line) { printed.push_back(line); };
  RunResult r = h.run(Json::object(), options);
  CHECK(calls == 0);
  CHECK(printed == std::vector<std::string>{"a (set)", "    x: 3", "b (effect)", "    value: 3", "c (effect)",
                                            "    later: ${{ steps.b.outputs.y }}"});
}

TEST_CASE("secrets never reach a log line", "[executor][secrets]") {
  Harness h;
  h.redactor.add_secret("s3cr3t-value");
  REQUIRE(h.load(R"(steps:
  - {id: a, type: log, with: {message: "token is s3cr3t-value"}}
)") == "");
  h.run();
  CHECK(h.log_contains("token is ***"));
  CHECK_FALSE(h.log_contains("s3cr3t-value"));
}

using flowrun::test::process_threads;

TEST_CASE("2,000 pollers wait side by side in virtual time without a thread each", "[executor][poll][fiber]") {
  Harness h;
  const TimePoint start = h.virtual_clock.now();
  const int threads_before = process_threads();
  FiberScheduler::reset_save_figures();
  int polls = 0, in_poll_threads = 0;
  h.registry.add(std::make_unique<LambdaPoller>("ready_after", [&](StepContext& ctx) {
    ++polls;
    in_poll_threads = std::max(in_poll_threads, process_threads());
    // Item n is ready once 60 + n % 7 seconds have passed.
    const Duration ready_at = 60s + std::chrono::seconds(ctx.with()["n"].get<int>() % 7);
    PollResult r;
    r.status = ctx.clock().now() - start >= ready_at ? PollStatus::kDone : PollStatus::kPending;
    return r;
  }));
  REQUIRE(h.load(R"(steps:
  - id: each
    for_each: "${{ (function() local t = {} for i = 1, 2000 do t[i] = i end return t end)() }}"
    as: n
    concurrency: 2000
    steps:
      - {id: wait, type: ready_after, with: {n: "${{ n }}", interval: 10s, timeout: 1h}}
)") == "");
  RunResult r = h.run();
  CHECK(r.status == RunState::kSucceeded);
  CHECK(r.steps["each"]["outputs"]["succeeded"] == 2000);
#if defined(__OPTIMIZE__) && !defined(__SANITIZE_ADDRESS__) && !FLOWRUN_HAS_ASAN
  // Between two polls an item keeps no stack: its frames wait encoded on the heap.
  CHECK(FiberScheduler::deepest_save() > 0);
  // Its frames, from the for_each down to the timer, stay within a page (the executor keeps them
  // small; a sanitizer's or -O0's frames do not), and saved they take a fraction of one.
  CHECK(FiberScheduler::deepest_save() <= 4096);
  CHECK(FiberScheduler::largest_saved() <= 1024);
#endif
  // Each item polls at 0, 10, ..., 60 s and, when not ready at 60 s, at 70 s: side by side,
  // the run took 70 s of virtual time, not 2,000 times that.
  CHECK(h.virtual_clock.now() - start == 70s);
  const int late = 2000 - 2000 / 7;  // items with n % 7 != 0 poll an eighth time
  CHECK(polls == 2000 * 7 + late);
  CHECK(in_poll_threads == threads_before);
}

TEST_CASE("a run cancelled while its for_each items sleep between polls ends at once", "[executor][poll][fiber]") {
  // The items' stacks are saved while they sleep (engine/io/parked_stack.h) and the cancel comes
  // from another thread: every token it walks must be off those stacks, or this run crashes.
  Harness h;
  h.use_real_clock = true;
  std::atomic<int> polls{0};
  h.registry.add(std::make_unique<LambdaPoller>("never_ready", [&](StepContext&) {
    ++polls;
    return PollResult{};
  }));
  REQUIRE(h.load(R"(steps:
  - id: each
    for_each: "${{ (function() local t = {} for i = 1, 200 do t[i] = i end return t end)() }}"
    as: n
    concurrency: 200
    steps:
      - {id: wait, type: never_ready, with: {interval: 10s, timeout: 1h}}
)") == "");
  Duration took{0};
  RunResult r = h.run_cancelled_after(300ms, &took);
  CHECK(polls == 200);  // each polled once, then slept
  CHECK(r.status == RunState::kCancelled);
  CHECK(took < 5s);
#if !defined(__SANITIZE_ADDRESS__) && !FLOWRUN_HAS_ASAN
  CHECK(FiberScheduler::deepest_save() > 0);  // the items' stacks were saved (not under ASan)
#endif
}

TEST_CASE("for_each: at most 16,384 items in flight, whatever the concurrency asked", "[executor][for_each][fiber]") {
  Harness h;
  int running = 0, peak = 0;
  h.registry.add(std::make_unique<LambdaStep>("hold", [&](StepContext& ctx) -> Json {
    peak = std::max(peak, ++running);
    ctx.sleep(1s);  // all in flight at once, in virtual time
    --running;
    return Json::object();
  }));
  REQUIRE(h.load(R"(steps:
  - id: each
    for_each: "${{ (function() local t = {} for i = 1, 16500 do t[i] = i end return t end)() }}"
    concurrency: 20000
    steps:
      - {id: h, type: hold}
)") == "");
  RunResult r = h.run();
  CHECK(r.status == RunState::kSucceeded);
  CHECK(r.steps["each"]["outputs"]["succeeded"] == 16500);
  CHECK(peak == 16384);
  CHECK(h.log_contains("runs 16384 items at a time"));
}
