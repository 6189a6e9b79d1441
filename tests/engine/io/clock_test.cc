#include "engine/io/clock.h"

#include <catch2/catch.hpp>

using namespace flowrun;
using namespace std::chrono_literals;

TEST_CASE("virtual clock: its wall time moves with virtual time, from the real calendar time", "[clock]") {
  VirtualClock clock;
  CancelToken cancel;
  const auto real_before = std::chrono::system_clock::now();
  const WallTime before = clock.wall_now();
  CHECK(before >= std::chrono::time_point_cast<Duration>(real_before) - Duration(1s));
  REQUIRE(clock.sleep_for(Duration(2h), cancel));
  const WallTime after = clock.wall_now();
  CHECK(after - before >= Duration(2h));
  CHECK(after - before < Duration(2h) + Duration(1min));
}

TEST_CASE("real clock: its wall time is the system's", "[clock]") {
  RealClock clock;
  const auto system = std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now());
  const WallTime wall = clock.wall_now();
  CHECK(wall >= system);
  CHECK(wall - system < Duration(1min));
}
