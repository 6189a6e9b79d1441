#include "engine/cli/live_table.h"

#include <catch2/catch.hpp>

#include "engine/cli/terminal_text.h"

using namespace flowrun;
using namespace std::chrono_literals;

namespace {
const TimePoint t0{Duration(1'000'000)};
}

TEST_CASE("item_path_of finds the innermost for_each item of a path", "[terminal]") {
  std::string group;
  CHECK(item_path_of("videos[2].finally.cleanup", &group) == "videos[2]");
  CHECK(group == "videos");
  CHECK(item_path_of("videos[12]") == "videos[12]");
  CHECK(item_path_of("a[1].b[3].c", &group) == "a[1].b[3]");
  CHECK(group == "a[1].b");
  CHECK(item_path_of("videos").empty());
  CHECK(item_path_of("x[].y").empty());
  CHECK(item_path_of("x[a].y").empty());
}

TEST_CASE("the live table: one row per running item with status, bar, elapsed, cost and last line", "[terminal]") {
  LiveTable table;
  CHECK_FALSE(table.visible());
  table.step_started("videos[0].gpu", t0);
  table.event("videos[0].gpu", "instance_started", {{"instance", "i-1"}, {"price_per_hour", 0.36}}, t0);
  table.live("videos[0]", {{"status", "running"}, {"item", "/data/in/alpha.mp4"}}, t0);
  table.live("videos[0].result", {{"progress", 42.0}, {"progress_text", "frame 420/1000"}, {"last_line", "encoding"}},
             t0 + 5s);
  table.step_started("videos[1].gpu", t0 + 10s);
  table.live("videos[1]", {{"item", "bravo.mp4"}, {"status", "provisioning"}}, t0 + 10s);
  REQUIRE(table.visible());

  const auto lines = table.render(t0 + 100s, 120, 10);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0] == "videos: 2 running  1:40  $0.010");
  CHECK(lines[1] == "  running    videos[0] alpha.mp4 [####......]  42% frame 420/1000    1:40   $0.010  encoding");
  CHECK(lines[2] == "  provision\u2026 videos[1] bravo.mp4 [          ]    -                   1:30");
  // Without any cost, no cost column.
  LiveTable free;
  free.step_started("videos[0].gpu", t0);
  CHECK(free.render(t0 + 3s, 120, 10)[1] == "  running    videos[0] [          ]    -    0:03");

  // Fit to a narrow terminal: every line cut to the width, by character.
  for (const auto& line : table.render(t0 + 100s, 30, 10)) CHECK(display_width(line) <= 30);
  CHECK(table.render(t0 + 100s, 30, 10)[1] == "  running    videos[0] alpha.\u2026");
}

TEST_CASE("the live table: an ended item leaves the table for one line above it", "[terminal]") {
  LiveTable table;
  table.live("videos[0]", {{"item", "alpha.mp4"}}, t0);
  table.event("videos[0].gpu", "instance_started", {{"instance", "i-1"}, {"price_per_hour", 3.6}}, t0);
  table.event("videos[0].finally.cleanup", "instance_destroyed", {{"instance", "i-1"}}, t0 + 60s);
  table.live("videos[1]", {{"item", "bravo.mp4"}}, t0);
  table.event("videos", "item_succeeded", {{"index", 0}, {"item", "alpha.mp4"}}, t0 + 61s);
  table.event("videos[1]", "item_failed", {{"index", 1}, {"error", "boom"}}, t0 + 62s);
  CHECK(table.has_ended_lines());
  const auto ended = table.take_ended_lines(100);
  REQUIRE(ended.size() == 2);
  CHECK(ended[0] == "videos[0]  alpha.mp4  succeeded after 1:01, $0.060");
  CHECK(ended[1] == "videos[1]  bravo.mp4  FAILED after 1:02");
  CHECK(table.take_ended_lines(100).empty());
  // The group stays while the for_each runs, with its totals; a late report does not bring an item back.
  table.live("videos[0].result", {{"progress", 100}}, t0 + 63s);
  auto lines = table.render(t0 + 70s, 100, 10);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0] == "videos: 0 running, 1 failed, 1 succeeded  1:10  $0.060");
  table.step_finished("videos", "succeeded", t0 + 71s);
  CHECK_FALSE(table.visible());
  CHECK(table.render(t0 + 72s, 100, 10).empty());
}

TEST_CASE("the live table: items no event ended end with their for_each", "[terminal]") {
  LiveTable table;
  table.step_started("videos[0].gpu", t0);
  table.step_started("videos[1].gpu", t0);
  table.step_finished("videos[1].result", "failed", t0 + 5s);
  table.step_finished("videos", "failed", t0 + 9s);
  const auto ended = table.take_ended_lines(100);
  REQUIRE(ended.size() == 2);
  CHECK(ended[0] == "videos[0]  done after 0:09");
  CHECK(ended[1] == "videos[1]  FAILED after 0:09");
}

TEST_CASE("the live table: terminal statuses of a live patch end an item, a step's does not", "[terminal]") {
  LiveTable table;
  table.live("videos[0].result", {{"status", "failed"}}, t0);
  CHECK_FALSE(table.has_ended_lines());
  table.live("videos[0]", {{"status", "cancelled"}}, t0 + 1s);
  REQUIRE(table.has_ended_lines());
  CHECK(table.take_ended_lines(100)[0] == "videos[0]  cancelled after 0:01");
}

TEST_CASE("the live table: rows beyond the lines that fit become a count", "[terminal]") {
  LiveTable table;
  for (int i = 0; i < 15; ++i) table.step_started("videos[" + std::to_string(i) + "].gpu", t0);
  const auto lines = table.render(t0, 80, 5);
  REQUIRE(lines.size() == 5);
  CHECK(lines[0].rfind("videos: 15 running", 0) == 0);
  CHECK(lines[1].find("videos[0]") != std::string::npos);
  CHECK(lines[3].find("videos[2]") != std::string::npos);
  CHECK(lines[4] == "  + 12 more running");
  CHECK(table.render(t0, 80, 20).size() == 16);
}

TEST_CASE("the live table: an item's log lines give its last line and progress, cleaned", "[terminal]") {
  LiveTable table;
  table.step_started("videos[0].result", t0);
  CHECK_FALSE(table.log_line({LogLevel::kInfo, "videos[0].result", "| decoding \x1b[2A\x1b[31mred\x1b[0m"}, t0));
  CHECK(table.log_line({LogLevel::kInfo, "videos[0].result", "progress [#######.............]  35% (35%)"}, t0));
  CHECK(table.log_line({LogLevel::kInfo, "videos[0].result", "still waiting: 1m elapsed, 30 checks"}, t0));
  // A warning is never taken out of the scroll; a line of the for_each step itself is no item's.
  CHECK_FALSE(table.log_line({LogLevel::kWarn, "videos[0].result", "progress [###] 15% (15%)"}, t0));
  CHECK_FALSE(table.log_line({LogLevel::kWarn, "videos", "item 0 (alpha) failed"}, t0));
  const auto lines = table.render(t0, 100, 5);
  REQUIRE(lines.size() == 2);
  CHECK(lines[1] == "  running    videos[0] [#.........]  15%    0:00  | decoding red");
}

TEST_CASE("format_elapsed and format_cost", "[terminal]") {
  CHECK(format_elapsed(5s) == "0:05");
  CHECK(format_elapsed(65s) == "1:05");
  CHECK(format_elapsed(3723s) == "1:02:03");
  CHECK(format_cost(0.0421) == "$0.042");
  CHECK(format_cost(12.4) == "$12.40");
}
