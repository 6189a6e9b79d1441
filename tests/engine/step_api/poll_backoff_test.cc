// A poller's own back-off (backoff_first, backoff_max): watch-instance's 5 s -> 60 s.
#include <catch2/catch.hpp>

#include "engine/io/step_error.h"
#include "engine/step_api/poll_loop.h"
#include "engine/step_api/step_type.h"

using namespace flowrun;
using namespace std::chrono_literals;

TEST_CASE("probe back-off from backoff_first doubles up to backoff_max", "[poll]") {
  CHECK(probe_backoff(5s, 60s, 1) == 5s);
  CHECK(probe_backoff(5s, 60s, 2) == 10s);
  CHECK(probe_backoff(5s, 60s, 3) == 20s);
  CHECK(probe_backoff(5s, 60s, 4) == 40s);
  CHECK(probe_backoff(5s, 60s, 5) == 60s);
  CHECK(probe_backoff(5s, 60s, 50) == 60s);
  CHECK(probe_backoff(5s, 1s, 3) == 5s);  // a cap below the first wait does not shorten it
}

TEST_CASE("poll settings read backoff_first and backoff_max", "[poll]") {
  StepInfo info;
  info.default_interval = 10s;
  PollSettings s = poll_settings(info, Json{{"backoff_first", "5s"}, {"backoff_max", "1m"}});
  CHECK(s.interval == Duration(10s));
  CHECK(s.backoff_first == Duration(5s));
  CHECK(s.backoff_max == Duration(60s));
  CHECK_FALSE(poll_settings(info, Json::object()).backoff_first);
  CHECK_THROWS_AS(poll_settings(info, Json{{"backoff_max", "soon"}}), StepError);
}
