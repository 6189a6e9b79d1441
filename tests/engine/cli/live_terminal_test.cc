#include "engine/cli/live_terminal.h"

#include <catch2/catch.hpp>
#include <regex>

#include "engine/cli/terminal_text.h"

using namespace flowrun;
using namespace std::chrono_literals;

namespace {

// Just enough of a terminal to replay what LiveTerminal writes: text, CR, LF (as CR LF, like a
// tty's output processing), cursor up (ESC [ n A) and clear to the end of the screen (ESC [ J).
// Any other escape sequence fails the test.
class Screen {
 public:
  void feed(std::string_view text) {
    for (size_t i = 0; i < text.size(); ++i) {
      const char c = text[i];
      if (c == '\r') {
        col_ = 0;
      } else if (c == '\n') {
        ++row_;
        col_ = 0;
      } else if (c == '\x1b') {
        std::smatch m;
        const std::string rest(text.substr(i));
        REQUIRE(std::regex_search(rest, m, std::regex("^\\x1b\\[(\\d*)([AJ])")));
        if (m[2] == "A") {
          row_ -= std::stoul(m[1]);
          REQUIRE(row_ < 1000);  // above the first line: the count was wrong
        } else {
          line(row_).resize(col_);
          lines_.resize(row_ + 1);
        }
        i += m[0].length() - 1;
      } else {
        std::string& l = line(row_);
        l.resize(std::max(l.size(), col_));
        l.replace(col_, 1, 1, c);
        ++col_;
      }
    }
  }
  // The screen's text, trailing empty lines dropped.
  std::vector<std::string> text() const {
    std::vector<std::string> out = lines_;
    while (!out.empty() && out.back().empty()) out.pop_back();
    return out;
  }
  size_t row() const { return row_; }

 private:
  std::string& line(size_t r) {
    if (lines_.size() <= r) lines_.resize(r + 1);
    return lines_[r];
  }
  std::vector<std::string> lines_;
  size_t row_ = 0, col_ = 0;
};

struct Fixture {
  VirtualClock clock;
  std::string written;
  Screen screen;
  std::pair<size_t, size_t> size{60, 20};
  LiveTerminal terminal{TerminalIo{[this](std::string_view t) {
                                     written += t;
                                     screen.feed(t);
                                   },
                                   [this] { return size; }, true},
                        clock};
  // A console line, printed as the sink would: the message and a line feed.
  void log(LogLevel level, const std::string& logger, const std::string& message) {
    terminal.console({level, logger, message}, [&](std::string_view text) {
      const std::string line = "LOG " + std::string(text) + "\n";
      written += line;
      screen.feed(line);
    });
  }
};

}  // namespace

TEST_CASE("live terminal: draws the table, redraws in place only when it changed", "[terminal]") {
  Fixture f;
  f.terminal.update([](LiveTable& t, TimePoint now) {
    t.step_started("videos[0].gpu", now);
    t.step_started("videos[1].gpu", now);
  });
  f.terminal.refresh();
  CHECK(f.screen.text() == std::vector<std::string>{"videos: 2 running  0:00",
                                                    "  running    videos[0] [          ]    -    0:00",
                                                    "  running    videos[1] [          ]    -    0:00"});
  const std::string before = f.written;
  f.terminal.refresh();
  CHECK(f.written == before);  // nothing changed: nothing written

  f.terminal.update([](LiveTable& t, TimePoint now) { t.live("videos[1]", {{"progress", 50}}, now); });
  f.terminal.refresh();
  // Up three lines, clear to the end of the screen, the three lines again.
  const std::string redraw = f.written.substr(before.size());
  CHECK(redraw.rfind("\r\x1b[3A\x1b[J", 0) == 0);
  CHECK(f.screen.text().size() == 3);
  CHECK(f.screen.text()[2] == "  running    videos[1] [#####.....]  50%    0:00");
  // The clock ticking a second changes the text: redrawn.
  f.clock.advance(1s);
  f.terminal.refresh();
  CHECK(f.screen.text()[0] == "videos: 2 running  0:01");
}

TEST_CASE("live terminal: log lines scroll above the table, cleaned, never inside it", "[terminal]") {
  Fixture f;
  f.terminal.update([](LiveTable& t, TimePoint now) { t.step_started("videos[0].gpu", now); });
  f.log(LogLevel::kInfo, "videos", "before the table \x1b[2A\x1b]0;title\a!");  // drawn at once with the table
  f.log(LogLevel::kWarn, "videos[0].result", "careful\nsecond line");
  std::vector<std::string> expected = {"LOG before the table !", "LOG careful", "second line",
                                       "videos: 1 running  0:00",
                                       "  running    videos[0] [          ]    -    0:00  second l\u2026"};
  CHECK(f.screen.text() == expected);  // the row cut to 59 columns

  // A progress bar the table shows does not scroll while the table is on; it moves the bar.
  const std::string before = f.written;
  f.log(LogLevel::kInfo, "videos[0].result", "progress [########............]  40% (40%)");
  CHECK(f.written == before);
  f.terminal.refresh();
  CHECK(f.screen.text().back() == "  running    videos[0] [####......]  40%    0:00  second l\u2026");

  // An item that ends is printed above at once; stop() takes the table away and leaves the scroll.
  f.clock.advance(65s);
  f.terminal.update([](LiveTable& t, TimePoint now) { t.event("videos", "item_succeeded", {{"index", 0}}, now); });
  f.terminal.stop();
  expected = {"LOG before the table !", "LOG careful", "second line", "videos[0]  succeeded after 1:05"};
  CHECK(f.screen.text() == expected);
  CHECK(f.screen.row() == expected.size());  // the cursor below the last line: the summary prints there

  // After stop the console prints straight through, still cleaned.
  f.log(LogLevel::kInfo, "videos", "after \x1b[1Aall");
  CHECK(f.screen.text().back() == "LOG after all");
}

TEST_CASE("live terminal: lines fit the width and the table the height", "[terminal]") {
  Fixture f;
  f.size = {30, 10};
  f.terminal.update([](LiveTable& t, TimePoint now) {
    for (int i = 0; i < 12; ++i) t.step_started("videos[" + std::to_string(i) + "].gpu", now);
    t.live("videos[0]", {{"last_line", std::string(200, 'x')}}, now);
  });
  f.terminal.refresh();
  const auto lines = f.screen.text();
  // A 10-row terminal keeps 8 rows for the scroll: the head and a count.
  REQUIRE(lines.size() == 2);
  CHECK(lines[1] == "  + 12 more running");
  f.size = {30, 24};
  f.terminal.refresh();
  for (const auto& line : f.screen.text()) CHECK(display_width(line) < 30);  // the last column stays free
  CHECK(f.screen.text().size() == 13);
  // Too small a terminal: no table at all.
  f.size = {30, 3};
  f.terminal.refresh();
  CHECK(f.screen.text().empty());
}

TEST_CASE("live terminal: the render thread draws within a second and stops", "[terminal]") {
  VirtualClock clock;
  Mutex mutex;
  std::string written;
  Screen screen;
  auto text = [&] {
    MutexLock lock(mutex);
    return screen.text();
  };
  LiveTerminal terminal(TerminalIo{[&](std::string_view t) {
                                     MutexLock lock(mutex);
                                     written += t;
                                     screen.feed(t);
                                   },
                                   [] { return std::pair<size_t, size_t>(60, 20); }, true},
                        clock);
  terminal.start();
  terminal.update([](LiveTable& t, TimePoint now) { t.step_started("videos[0].gpu", now); });
  for (int i = 0; i < 100 && text().empty(); ++i) std::this_thread::sleep_for(10ms);
  CHECK(text().size() == 2);
  terminal.stop();
  CHECK(text().empty());  // erased on stop
  MutexLock lock(mutex);
  CHECK(written.find("videos[0]") != std::string::npos);
}
