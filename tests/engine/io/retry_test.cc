// The one retry loop, in virtual time: what it sleeps, what it rethrows, what it tells its caller.
#include "engine/io/retry.h"

#include <catch2/catch.hpp>
#include <stdexcept>

using namespace flowrun;
using namespace std::chrono_literals;

namespace {

RetryPolicy three_tries_one_two() {
  RetryPolicy p;
  p.attempts = 3;
  p.backoff = {Duration(1s), 2.0, Duration(60s), Jitter::kNone};
  return p;
}

struct Heard {
  int attempt;
  std::string error;
  bool retry;
  Duration delay;
  std::string reason;
};

struct Listener {
  std::vector<Heard> heard;
  OnFailedAttempt callback() {
    return [this](const FailedAttempt& f) {
      heard.push_back({f.attempt, f.error.what(), f.decision.retry, f.decision.delay, f.decision.reason});
    };
  }
};

}  // namespace

TEST_CASE("retry: attempts until op returns, sleeping the backoff between them", "[retry]") {
  VirtualClock clock;
  CancelToken cancel;
  Listener listener;
  std::vector<int> seen;
  int result = retry(
      three_tries_one_two(), clock, cancel, std::nullopt,
      [&](int attempt) {
        seen.push_back(attempt);
        if (attempt < 3) throw StepError::transient("not yet " + std::to_string(attempt));
        return 42;
      },
      listener.callback());
  CHECK(result == 42);
  CHECK(seen == std::vector<int>{1, 2, 3});
  CHECK(clock.sleeps() == std::vector<Duration>{1s, 2s});
  REQUIRE(listener.heard.size() == 2);
  CHECK(listener.heard[0].attempt == 1);
  CHECK(listener.heard[0].error == "not yet 1");
  CHECK(listener.heard[0].retry);
  CHECK(listener.heard[0].delay == Duration(1s));
  CHECK(listener.heard[1].attempt == 2);
  CHECK(listener.heard[1].delay == Duration(2s));
}

TEST_CASE("retry: on give-up the caller hears the attempt and the reason, then the error is rethrown", "[retry]") {
  VirtualClock clock;
  CancelToken cancel;
  Listener listener;
  int calls = 0;
  try {
    retry(
        three_tries_one_two(), clock, cancel, std::nullopt,
        [&](int) {
          ++calls;
          throw StepError::http(503, "busy");
        },
        listener.callback());
    FAIL("retry returned");
  } catch (const StepError& e) {
    CHECK(std::string(e.what()) == "busy");
    CHECK(e.http_status() == 503);
  }
  CHECK(calls == 3);
  REQUIRE(listener.heard.size() == 3);
  CHECK_FALSE(listener.heard[2].retry);
  CHECK(listener.heard[2].attempt == 3);
  CHECK(listener.heard[2].reason == "attempts exhausted (3/3)");
  CHECK(clock.sleeps() == std::vector<Duration>{1s, 2s});
}

TEST_CASE("retry: an error the policy does not name is rethrown at once", "[retry]") {
  VirtualClock clock;
  CancelToken cancel;
  Listener listener;
  CHECK_THROWS_WITH(retry(
                        three_tries_one_two(), clock, cancel, std::nullopt,
                        [](int) -> int { throw StepError::permanent("bad input"); }, listener.callback()),
                    "bad input");
  REQUIRE(listener.heard.size() == 1);
  CHECK(listener.heard[0].reason == "error kind permanent is not retried");
  CHECK(clock.sleeps().empty());
}

TEST_CASE("retry: the policy's conditions decide, typed", "[retry]") {
  VirtualClock clock;
  CancelToken cancel;
  RetryPolicy p = three_tries_one_two();
  p.on = {RetryCondition::http(429, 429)};
  int calls = 0;
  CHECK_THROWS_WITH(retry(p, clock, cancel, std::nullopt,
                          [&](int) {
                            ++calls;
                            throw StepError::http(503, "busy");
                          }),
                    "busy");
  CHECK(calls == 1);
  calls = 0;
  retry(p, clock, cancel, std::nullopt, [&](int attempt) {
    ++calls;
    if (attempt == 1) throw StepError::http(429, "slow down");
  });
  CHECK(calls == 2);
}

TEST_CASE("retry: cancellation is never retried, and the callback does not hear it", "[retry]") {
  VirtualClock clock;
  Listener listener;
  SECTION("a cancelled error") {
    CancelToken cancel;
    int calls = 0;
    CHECK_THROWS_WITH(retry(
                          three_tries_one_two(), clock, cancel, std::nullopt,
                          [&](int) {
                            ++calls;
                            throw StepError::cancelled("stopped");
                          },
                          listener.callback()),
                      "stopped");
    CHECK(calls == 1);
  }
  SECTION("any error once the token fired") {
    CancelToken cancel;
    try {
      retry(
          three_tries_one_two(), clock, cancel, std::nullopt,
          [&](int) {
            cancel.cancel("Ctrl+C");
            throw StepError::transient("lost connection");
          },
          listener.callback());
      FAIL("retry returned");
    } catch (const StepError& e) {
      CHECK(e.kind() == ErrorKind::kTransient);
      CHECK(std::string(e.what()) == "lost connection");
    }
  }
  SECTION("a token cancelled before the first attempt") {
    CancelToken cancel;
    cancel.cancel("run cancelled");
    bool called = false;
    try {
      retry(three_tries_one_two(), clock, cancel, std::nullopt, [&](int) { called = true; });
      FAIL("retry returned");
    } catch (const StepError& e) {
      CHECK(e.kind() == ErrorKind::kCancelled);
      CHECK(std::string(e.what()) == "run cancelled");
    }
    CHECK_FALSE(called);
  }
  CHECK(listener.heard.empty());
  CHECK(clock.sleeps().empty());
}

TEST_CASE("retry: a sleep cancelled throws StepError cancelled with the token's reason", "[retry]") {
  VirtualClock clock;
  CancelToken cancel;
  int calls = 0;
  try {
    retry(
        three_tries_one_two(), clock, cancel, std::nullopt,
        [&](int) {
          ++calls;
          throw StepError::transient("flaky");
        },
        [&](const FailedAttempt& f) {
          CHECK(f.decision.retry);
          cancel.cancel("second Ctrl+C");  // arrives while the loop would sleep
        });
    FAIL("retry returned");
  } catch (const StepError& e) {
    CHECK(e.kind() == ErrorKind::kCancelled);
    CHECK(std::string(e.what()) == "second Ctrl+C");
  }
  CHECK(calls == 1);
}

TEST_CASE("retry: no attempt starts at or after the deadline", "[retry]") {
  VirtualClock clock;
  CancelToken cancel;
  Listener listener;
  RetryOptions options;
  options.deadline_reason = "the step timeout leaves no time for another attempt";
  const TimePoint deadline = clock.now() + Duration(2500ms);
  int calls = 0;
  CHECK_THROWS_WITH(retry(
                        RetryPolicy{.attempts = 10, .backoff = {Duration(1s), 2.0, Duration(60s)}, .max_elapsed = {}},
                        clock, cancel, deadline,
                        [&](int) {
                          ++calls;
                          throw StepError::transient("flaky");
                        },
                        listener.callback(), options),
                    "flaky");
  // 1 s sleep (t=1s), 2 s would end at 3 s > 2.5 s: stop after the second attempt.
  CHECK(calls == 2);
  CHECK(clock.sleeps() == std::vector<Duration>{1s});
  REQUIRE(listener.heard.size() == 2);
  CHECK_FALSE(listener.heard[1].retry);
  CHECK(listener.heard[1].reason == "the step timeout leaves no time for another attempt");
}

TEST_CASE("retry: a next attempt that would start exactly at the deadline is not made", "[retry]") {
  VirtualClock clock;
  CancelToken cancel;
  const TimePoint deadline = clock.now() + Duration(1s);
  int calls = 0;
  CHECK_THROWS(retry(three_tries_one_two(), clock, cancel, deadline, [&](int) {
    ++calls;
    throw StepError::transient("x");
  }));
  CHECK(calls == 1);
}

TEST_CASE("retry: Retry-After wins, and max_elapsed counts from the given first start", "[retry]") {
  VirtualClock clock;
  CancelToken cancel;
  RetryPolicy p = three_tries_one_two();
  p.max_elapsed = Duration(60s);
  SECTION("Retry-After") {
    retry(p, clock, cancel, std::nullopt, [&](int attempt) {
      if (attempt == 1) throw StepError::http(429, "slow down", Duration(7s));
    });
    CHECK(clock.sleeps() == std::vector<Duration>{7s});
  }
  SECTION("a first start 59.5 s ago leaves no room for a 1 s backoff") {
    Listener listener;
    RetryOptions options;
    options.started = clock.now() - Duration(59500ms);
    CHECK_THROWS(retry(
        p, clock, cancel, std::nullopt, [](int) { throw StepError::transient("x"); }, listener.callback(), options));
    REQUIRE(listener.heard.size() == 1);
    CHECK(listener.heard[0].reason == "max_elapsed 1m would be exceeded");
  }
}

TEST_CASE("retry: jitter comes from the given source, the whole delay without one", "[retry]") {
  CancelToken cancel;
  RetryPolicy p = three_tries_one_two();
  p.backoff.jitter = Jitter::kFull;
  auto fail_once = [](int attempt) {
    if (attempt == 1) throw StepError::transient("x");
  };
  VirtualClock with_source, without;
  FixedRandom quarter(0.25);
  RetryOptions options;
  options.random = &quarter;
  retry(p, with_source, cancel, std::nullopt, fail_once, {}, options);
  retry(p, without, cancel, std::nullopt, fail_once);
  CHECK(with_source.sleeps() == std::vector<Duration>{250ms});
  CHECK(without.sleeps() == std::vector<Duration>{1s});
}

TEST_CASE("retry: an exception that is not a StepError passes through untouched", "[retry]") {
  VirtualClock clock;
  CancelToken cancel;
  int calls = 0;
  CHECK_THROWS_AS(retry(three_tries_one_two(), clock, cancel, std::nullopt,
                        [&](int) {
                          ++calls;
                          throw std::logic_error("bug");
                        }),
                  std::logic_error);
  CHECK(calls == 1);
}
