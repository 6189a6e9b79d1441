// The attempt runner through the executor, in virtual time: how the retries of one action end.
#include "engine/runtime/attempt_runner.h"

#include <atomic>
#include <catch2/catch.hpp>

#include "engine/io/step_error.h"
#include "support/harness.h"

using namespace flowrun;
using flowrun::test::Harness;
using flowrun::test::LambdaStep;
using namespace std::chrono_literals;

namespace {
void add_failing(Harness& h, const std::string& name, StepError error, std::atomic<int>& calls) {
  h.registry.add(std::make_unique<LambdaStep>(name, [error, &calls](StepContext&) -> Json {
    ++calls;
    throw error;
  }));
}
}  // namespace

TEST_CASE("attempts: the step timeout ends the retries before a wait that would cross it", "[executor][retry]") {
  Harness h;
  std::atomic<int> calls{0};
  add_failing(h, "down", StepError::transient("connection refused"), calls);
  REQUIRE(h.load("steps:\n  - {id: a, type: down, timeout: 10s,\n"
                 "     retry: {attempts: 5, backoff: {initial: 8s, factor: 2, max: 60s}}}\n") == "");
  RunResult r = h.run();
  CHECK(r.status == RunState::kFailed);
  CHECK(calls == 2);  // 8 s fits in 10 s, 16 s more does not
  CHECK(h.virtual_clock.sleeps() == std::vector<Duration>{8s});
  CHECK(
      r.error ==
      "connection refused (transient); gave up after 2 attempts: the step timeout leaves no time for another attempt");
  REQUIRE(r.records.size() == 1);
  CHECK(r.records[0].attempts == 2);
  CHECK(h.log_contains("WARN [a] attempt 1/5 failed (transient): connection refused; retrying in 8s"));
}

TEST_CASE("attempts: a first failure not retried names why", "[executor][retry]") {
  Harness h;
  std::atomic<int> calls{0};
  add_failing(h, "limited", StepError::http(429, "rate limited", Duration(2min)), calls);
  REQUIRE(h.load("steps:\n  - {id: a, type: limited, retry: {attempts: 3, on: [http_429], max_elapsed: 1m}}\n") == "");
  RunResult r = h.run();
  CHECK(r.status == RunState::kFailed);
  CHECK(calls == 1);
  CHECK(r.error == "rate limited (transient (http 429)); not retried: max_elapsed 1m would be exceeded");
  CHECK(h.virtual_clock.sleeps().empty());
}

TEST_CASE("attempts: an error once the run is cancelled ends the step cancelled, not retried", "[executor][retry]") {
  Harness h;
  std::atomic<int> calls{0};
  h.registry.add(std::make_unique<LambdaStep>("interrupted", [&h, &calls](StepContext&) -> Json {
    ++calls;
    h.cancel.cancel("Ctrl+C");
    throw StepError::transient("connection lost");
  }));
  REQUIRE(h.load("steps:\n  - {id: a, type: interrupted, retry: {attempts: 5}}\n") == "");
  RunResult r = h.run();
  CHECK(r.status == RunState::kCancelled);
  CHECK(calls == 1);
  CHECK(h.log_contains("WARN [a] cancelled: connection lost"));
  CHECK(h.virtual_clock.sleeps().empty());
}
