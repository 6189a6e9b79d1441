#include "engine/io/retry_policy.h"

#include <catch2/catch.hpp>

using namespace flowrun;
using namespace std::chrono_literals;

namespace {
BackoffPolicy five_two_sixty(Jitter j = Jitter::kNone) { return {Duration(5s), 2.0, Duration(60s), j}; }
}  // namespace

TEST_CASE("exponential backoff without jitter: 5, 10, 20, 40, 60, 60 s", "[policy]") {
  FixedRandom random(0.5);
  std::vector<Duration> delays;
  for (int attempt = 1; attempt <= 6; ++attempt) delays.push_back(backoff_delay(five_two_sixty(), attempt, random));
  CHECK(delays ==
        std::vector<Duration>{Duration(5s), Duration(10s), Duration(20s), Duration(40s), Duration(60s), Duration(60s)});
}

TEST_CASE("full jitter stays within [0, capped delay] and never exceeds max", "[policy]") {
  SystemRandom random;
  for (int attempt = 1; attempt <= 12; ++attempt) {
    for (int i = 0; i < 200; ++i) {
      Duration d = backoff_delay(five_two_sixty(Jitter::kFull), attempt, random);
      Duration cap = std::min(Duration(5s) * (1 << std::min(attempt - 1, 10)), Duration(60s));
      REQUIRE(d >= Duration(0));
      REQUIRE(d <= cap);
    }
  }
  FixedRandom top(1.0), bottom(0.0);
  CHECK(backoff_delay(five_two_sixty(Jitter::kFull), 10, top) == Duration(60s));
  CHECK(backoff_delay(five_two_sixty(Jitter::kFull), 10, bottom) == Duration(0));
}

TEST_CASE("equal jitter keeps at least half the delay", "[policy]") {
  FixedRandom bottom(0.0), top(1.0);
  CHECK(backoff_delay(five_two_sixty(Jitter::kEqual), 2, bottom) == Duration(5s));
  CHECK(backoff_delay(five_two_sixty(Jitter::kEqual), 2, top) == Duration(10s));
  CHECK(backoff_delay(five_two_sixty(Jitter::kEqual), 9, top) == Duration(60s));
}

TEST_CASE("attempts counts every attempt, the first included", "[policy]") {
  FixedRandom random(0);
  RetryPolicy p;
  p.attempts = 3;
  p.backoff = five_two_sixty();
  auto err = StepError::transient("boom");
  CHECK(decide_retry(p, 1, err, Duration(0), random).retry);
  CHECK(decide_retry(p, 2, err, Duration(0), random).retry);
  auto last = decide_retry(p, 3, err, Duration(0), random);
  CHECK_FALSE(last.retry);
  CHECK(last.reason == "attempts exhausted (3/3)");
}

TEST_CASE("only the kinds named in `on` are retried", "[policy]") {
  FixedRandom random(0);
  RetryPolicy p;
  p.attempts = 5;
  p.on = {RetryCondition::transient()};
  CHECK(decide_retry(p, 1, StepError::transient("x"), Duration(0), random).retry);
  CHECK(decide_retry(p, 1, StepError::timeout("x"), Duration(0), random).retry);
  CHECK_FALSE(decide_retry(p, 1, StepError::permanent("x"), Duration(0), random).retry);
  CHECK_FALSE(decide_retry(p, 1, StepError::exit(3, "x"), Duration(0), random).retry);
  CHECK_FALSE(decide_retry(p, 1, StepError::cancelled("x"), Duration(0), random).retry);

  p.on = {RetryCondition::exit(3)};
  CHECK(decide_retry(p, 1, StepError::exit(3, "x"), Duration(0), random).retry);
  CHECK_FALSE(decide_retry(p, 1, StepError::exit(4, "x"), Duration(0), random).retry);

  p.on = {RetryCondition::http(429, 429)};
  CHECK(decide_retry(p, 1, StepError::http(429, "x"), Duration(0), random).retry);
  CHECK_FALSE(decide_retry(p, 1, StepError::http(503, "x"), Duration(0), random).retry);

  p.on = {RetryCondition::http(500, 599)};
  CHECK(decide_retry(p, 1, StepError::http(503, "x"), Duration(0), random).retry);
  CHECK_FALSE(decide_retry(p, 1, StepError::http(404, "x"), Duration(0), random).retry);

  p.on = {RetryCondition::timeout()};
  CHECK(decide_retry(p, 1, StepError::timeout("x"), Duration(0), random).retry);
  CHECK_FALSE(decide_retry(p, 1, StepError::transient("x"), Duration(0), random).retry);

  p.on = {RetryCondition::any()};
  CHECK(decide_retry(p, 1, StepError::permanent("x"), Duration(0), random).retry);
  CHECK_FALSE(decide_retry(p, 1, StepError::cancelled("x"), Duration(0), random).retry);
}

TEST_CASE("a server's Retry-After wins over the computed delay", "[policy]") {
  FixedRandom random(0.5);
  RetryPolicy p;
  p.attempts = 5;
  p.backoff = five_two_sixty();
  auto err = StepError::http(429, "slow down", Duration(17s));
  auto d = decide_retry(p, 1, err, Duration(0), random);
  CHECK(d.retry);
  CHECK(d.delay == Duration(17s));
}

TEST_CASE("max_elapsed stops retries that would run past it, Retry-After included", "[policy]") {
  FixedRandom random(0.5);
  RetryPolicy p;
  p.attempts = 10;
  p.backoff = five_two_sixty();
  p.max_elapsed = Duration(60s);
  CHECK(decide_retry(p, 1, StepError::transient("x"), Duration(50s), random).retry);  // 50 + 5 <= 60
  auto d = decide_retry(p, 2, StepError::transient("x"), Duration(55s), random);      // 55 + 10 > 60
  CHECK_FALSE(d.retry);
  CHECK(d.reason == "max_elapsed 1m would be exceeded");
  CHECK_FALSE(decide_retry(p, 1, StepError::http(429, "x", Duration(120s)), Duration(0), random).retry);
}

TEST_CASE("retry conditions are parsed once into their typed form", "[policy]") {
  CHECK(parse_retry_condition("transient") == RetryCondition::transient());
  CHECK(parse_retry_condition("timeout") == RetryCondition::timeout());
  CHECK(parse_retry_condition("http_429") == RetryCondition::http(429, 429));
  CHECK(parse_retry_condition("http_5xx") == RetryCondition::http(500, 599));
  CHECK(parse_retry_condition("exit:1") == RetryCondition::exit(1));
  CHECK(parse_retry_condition("exit:137") == RetryCondition::exit(137));
  CHECK(parse_retry_condition("exit:0") == RetryCondition::exit(0));
  CHECK(parse_retry_condition("any") == RetryCondition::any());
  for (const char* bad : {"transient ", "exit:", "exit:x", "exit:-1", "http_4xx", "sometimes", ""})
    CHECK_FALSE(parse_retry_condition(bad));
}

TEST_CASE("exit:03 is a valid condition that matches no exit code, as when it was compared as text", "[policy]") {
  auto leading_zero = parse_retry_condition("exit:03");
  REQUIRE(leading_zero);
  CHECK_FALSE(error_matches(*leading_zero, StepError::exit(3, "x")));
  auto huge = parse_retry_condition("exit:99999999999");
  REQUIRE(huge);
  CHECK_FALSE(error_matches(*huge, StepError::exit(3, "x")));
}

TEST_CASE("an HTTP status range matches only HTTP errors in it", "[policy]") {
  auto any_status = RetryCondition::http(100, 599);
  CHECK(error_matches(any_status, StepError::http(404, "x")));
  CHECK(error_matches(any_status, StepError::http(503, "x")));
  CHECK_FALSE(error_matches(any_status, StepError::transient("connection reset")));
  CHECK_FALSE(error_matches(any_status, StepError::cancelled("x")));
}
