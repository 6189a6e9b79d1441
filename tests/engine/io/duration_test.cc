#include "engine/io/duration.h"

#include <catch2/catch.hpp>

using namespace flowrun;
using namespace std::chrono_literals;

TEST_CASE("durations parse with every unit and in combination", "[duration]") {
  CHECK(parse_duration("250ms") == Duration(250));
  CHECK(parse_duration("30s") == Duration(30s));
  CHECK(parse_duration("5m") == Duration(5min));
  CHECK(parse_duration("2h") == Duration(2h));
  CHECK(parse_duration("1h30m") == Duration(90min));
  CHECK(parse_duration("1.5s") == Duration(1500));
}

TEST_CASE("bad durations are refused, a bare number included", "[duration]") {
  for (const char* bad : {"5x", "", "60", "s", "5 s", "-5s", "1h30", "ms5"}) {
    INFO(bad);
    CHECK_FALSE(parse_duration(bad).has_value());
  }
}

TEST_CASE("durations format for people", "[duration]") {
  CHECK(format_duration(Duration(250)) == "250ms");
  CHECK(format_duration(Duration(5s)) == "5s");
  CHECK(format_duration(Duration(1500)) == "1.5s");
  CHECK(format_duration(Duration(90s)) == "1m30s");
  CHECK(format_duration(Duration(2h)) == "2h");
}

TEST_CASE("hostile: durations over 100 years are refused, however many digits", "[hostile][duration]") {
  CHECK(parse_duration("36525d") == kMaxDuration);
  for (const char* bad : {"36526d", "106752d", "99999999999999999999d", "1e400s", "876601h", "36525d1ms"}) {
    INFO(bad);
    CHECK_FALSE(parse_duration(bad).has_value());
  }
  CHECK_FALSE(parse_duration(std::string(400, '9') + "ms").has_value());
}

TEST_CASE("hostile: format_duration is total: any count gives a string", "[hostile][duration]") {
  CHECK(format_duration(Duration(-1500)) == "-1.5s");
  CHECK(format_duration(Duration(-90'000)) == "-1m30s");
  CHECK(format_duration(Duration::min()) == "-2562047788015h12m55s");
  CHECK(format_duration(Duration::max()) == "2562047788015h12m55s");
  CHECK(format_duration(kMaxDuration) == "876600h");
}
