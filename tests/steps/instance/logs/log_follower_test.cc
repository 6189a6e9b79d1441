// LogFollower: successive snapshots of a log's end, each line handed on once. Besides the cases
// by hand, its answers are compared with a follower that keeps every seen line's text, on
// random logs, and a log that repeats a block checks that an overlap is checked beyond the
// lines it compares one by one.
#include "steps/instance/logs/log_follower.h"

#include <catch2/catch.hpp>
#include <random>

#include "support/sim_server.h"

using namespace flowrun;
using flowrun::test::TempDir;

using Lines = std::vector<std::string>;
using Views = std::vector<std::string_view>;  // a LogFollower's lines point into the snapshot fed

namespace {

// What LogFollower answers, by keeping the text of every line an overlap may span (as it did
// before it kept hashes) and comparing whole lines.
class TextFollower {
 public:
  struct Update {
    Lines lines;
    bool gap = false;
  };
  explicit TextFollower(size_t memory) : memory_(memory) {}
  Update feed(const Lines& window) {
    size_t overlap = 0;
    for (size_t k = std::min(window.size(), seen_.size()); k > 0; --k)
      if (std::equal(window.begin(), window.begin() + static_cast<std::ptrdiff_t>(k),
                     seen_.end() - static_cast<std::ptrdiff_t>(k))) {
        overlap = k;
        break;
      }
    Update update;
    update.gap = overlap == 0 && !seen_.empty() && !window.empty();
    for (size_t i = overlap; i < window.size(); ++i) {
      update.lines.push_back(window[i]);
      seen_.push_back(window[i]);
      if (seen_.size() > std::max(memory_, window.size())) seen_.erase(seen_.begin());
    }
    return update;
  }

 private:
  Lines seen_;
  size_t memory_;
};

std::string text_of(const Lines& lines, size_t from, size_t to) {
  std::string text;
  for (size_t i = from; i < to; ++i) text += lines[i] + "\n";
  return text;
}

}  // namespace

TEST_CASE("log follower: a growing whole log yields each line once, a partial line when complete", "[steps][logs]") {
  LogFollower f;
  CHECK(f.feed("a\nb\npart").lines == Views{"a", "b"});
  CHECK(f.feed("a\nb\npartial\nc\r\n").lines == Views{"partial", "c"});
  CHECK(f.feed("a\nb\npartial\nc\n").lines.empty());
  CHECK(f.feed("a\nb\npartial\nc\nlast", /*final=*/true).lines == Views{"last"});
  CHECK(f.lines_seen() == 5);
}

TEST_CASE("log follower: remembering only a window of lines, a sliding window yields each line once", "[steps][logs]") {
  LogFollower f(10);  // as an instance source with tail 10 keeps
  std::vector<std::string> all;
  for (int i = 0; i < 400; ++i) all.push_back("frame " + std::to_string(i));
  Lines got;
  for (int end = 10; end <= 400; end += 3) {
    std::string window;
    for (int i = end - 10; i < end; ++i) window += all[static_cast<size_t>(i)] + "\n";
    auto u = f.feed(window);
    CHECK_FALSE(u.gap);
    got.insert(got.end(), u.lines.begin(), u.lines.end());
  }
  // Windows ending at 10, 13, ... 400: every line, once, in order.
  CHECK(got == all);
}

TEST_CASE("log follower: a command that prints a whole growing log needs no more memory than its tail",
          "[steps][logs]") {
  LogFollower f(LogFollower::memory_for_tail(5));  // windows longer than the memory: each is kept whole
  Lines got;
  std::string log;
  for (int i = 0; i < 60; ++i) {
    log += "line " + std::to_string(i) + "\n";
    if (i % 7 != 6) continue;
    auto u = f.feed(log);  // `cat job.log`: everything so far, every poll
    CHECK_FALSE(u.gap);
    got.insert(got.end(), u.lines.begin(), u.lines.end());
  }
  REQUIRE(got.size() == 56);  // lines 0..55, each once
  CHECK(got.front() == "line 0");
  CHECK(got.back() == "line 55");
  CHECK(LogFollower::memory_for_tail(0) == 1);
}

TEST_CASE("log follower: a tail window is de-duplicated, a window past the last line seen is a gap", "[steps][logs]") {
  LogFollower f;
  CHECK(f.feed("1\n2\n3\n").lines == Views{"1", "2", "3"});
  auto u = f.feed("3\n4\n5\n");  // the window moved on by two lines
  CHECK(u.lines == Views{"4", "5"});
  CHECK_FALSE(u.gap);
  CHECK(f.feed("4\n5\n").lines.empty());  // a smaller window than before, nothing new
  u = f.feed("7\n8\n9\n");                // 6 was never seen
  CHECK(u.lines == Views{"7", "8", "9"});
  CHECK(u.gap);
}

TEST_CASE("log follower: repeated lines are matched by the longest overlap, a truncated log starts over",
          "[steps][logs]") {
  LogFollower f;
  CHECK(f.feed("x\nx\n").lines == Views{"x", "x"});
  CHECK(f.feed("x\nx\nx\n").lines == Views{"x"});
  auto u = f.feed("fresh start\n");  // rotated: nothing overlaps
  CHECK(u.lines == Views{"fresh start"});
  CHECK(u.gap);
}

TEST_CASE("read_file_tail: the last N lines, a partial last line included", "[steps][logs]") {
  TempDir dir;
  dir.write("log", "one\ntwo\nthree\nfour");
  CHECK(read_file_tail(dir.file("log"), 2) == "three\nfour");
  CHECK(read_file_tail(dir.file("log"), 10) == "one\ntwo\nthree\nfour");
  dir.write("log2", "one\ntwo\n");
  CHECK(read_file_tail(dir.file("log2"), 1) == "two\n");
  CHECK(read_file_tail(dir.file("missing"), 5) == "");
}

TEST_CASE("log follower: random logs give the lines and gaps that comparing whole lines gives", "[steps][logs]") {
  std::mt19937 rng(GENERATE(1u, 2u, 3u, 4u, 5u, 6u, 7u, 8u));
  // Most lines unique, some of three heartbeats, now and then a run copied from earlier: an
  // overlap that is not at the window's start has to be told from the true one.
  Lines log;
  while (log.size() < 20000) {
    const unsigned kind = rng() % 10;
    if (kind < 3) {
      log.push_back("heartbeat " + std::to_string(rng() % 3));
    } else if (kind == 3 && log.size() > 50) {
      const size_t from = rng() % (log.size() - 15), length = 1 + rng() % 15;
      for (size_t i = from; i < from + length; ++i) {
        std::string copy = log[i];
        log.push_back(copy);
      }
    } else {
      log.push_back("line " + std::to_string(log.size()) + " " + std::to_string(rng()));
    }
  }
  const size_t tail = 20 + rng() % 300;
  LogFollower follower(LogFollower::memory_for_tail(static_cast<int>(tail)));
  TextFollower text(LogFollower::memory_for_tail(static_cast<int>(tail)));
  size_t polls = 0, gaps = 0;
  size_t from = 0;
  for (size_t end = 0; end < log.size(); ++polls) {
    end = std::min(log.size(), end + rng() % (tail + tail / 4));  // past a whole window at times
    // A shorter window at times, never starting before the last one: a log's last N lines or
    // bytes, as the sources show, only move on.
    const size_t shown = rng() % 8 == 0 ? tail / 2 : tail;
    from = std::max(from, end > shown ? end - shown : 0);
    auto expected = text.feed(Lines(log.begin() + static_cast<std::ptrdiff_t>(from),  //
                                    log.begin() + static_cast<std::ptrdiff_t>(end)));
    const std::string snapshot = text_of(log, from, end);
    auto got = follower.feed(snapshot);
    INFO("poll " << polls << ", window " << from << ".." << end << ", tail " << tail);
    REQUIRE(got.gap == expected.gap);
    REQUIRE(Lines(got.lines.begin(), got.lines.end()) == expected.lines);
    gaps += got.gap;
  }
  CHECK(gaps > 0);          // the logs moved on by more than a window at times
  CHECK(gaps < polls / 2);  // and mostly not
}

TEST_CASE("log follower: a log that repeats a block: the lines between two copies are not taken as seen",
          "[steps][logs]") {
  // A window that ends with a block's second copy matches the last lines seen, the first copy,
  // line by line; only the lines before it differ, further back than the lines compared one by
  // one. The run before them must be checked too, wherever the window starts.
  for (size_t offset = 0; offset < 20; ++offset) {
    Lines log, block;
    for (size_t i = 0; i < 20; ++i) block.push_back("block line " + std::to_string(i));
    for (size_t i = 0; i < offset; ++i) log.push_back("earlier " + std::to_string(i));
    for (size_t i = 0; i < 30; ++i) log.push_back("first " + std::to_string(i));
    log.insert(log.end(), block.begin(), block.end());
    for (size_t i = 0; i < 20; ++i) log.push_back("between " + std::to_string(i));
    log.insert(log.end(), block.begin(), block.end());

    LogFollower f(50);
    if (offset > 0) f.feed(text_of(log, 0, offset));
    f.feed(text_of(log, offset, offset + 50));  // ends with the first copy
    auto u = f.feed(text_of(log, log.size() - 50, log.size()));
    INFO("offset " << offset);
    CHECK_FALSE(u.gap);
    const Lines after_first_window(log.begin() + static_cast<std::ptrdiff_t>(offset + 50), log.end());
    CHECK(Lines(u.lines.begin(), u.lines.end()) == after_first_window);
  }
}

TEST_CASE("log follower: a window longer than the memory, then a shorter one: the longer is still matched",
          "[steps][logs]") {
  // A command that prints the whole log (`cat job.log`), once printing less.
  LogFollower f(5);
  std::string log;
  for (int i = 0; i < 20; ++i) log += "l" + std::to_string(i) + "\n";
  CHECK(f.feed(log).lines.size() == 20);
  auto u = f.feed("");
  CHECK(u.lines.empty());
  CHECK_FALSE(u.gap);
  u = f.feed(log.substr(log.find("l10")));  // the last ten lines only
  CHECK(u.lines.empty());
  CHECK_FALSE(u.gap);
  u = f.feed(log + "l20\n");
  CHECK(u.lines == Views{"l20"});
  CHECK_FALSE(u.gap);
}

TEST_CASE("log follower: an overlap's first lines before its first kept hash are not compared", "[steps][logs]") {
  // The limit log_follower.h describes, pinned: 40 lines seen; a snapshot of two other lines,
  // then the last 20 lines seen, then one more. Taken as an overlap of 22 lines (18 to 39), its
  // last 16 are compared one by one and its first kept hash, at line 32, adds no run before
  // them: lines 18 to 23 are not compared, so X and Y are taken for 18 and 19. (Whole lines
  // compared, this is a gap and 23 new lines.)
  LogFollower f(100);
  std::string seen, snapshot = "X\nY\n";
  for (int i = 0; i < 40; ++i) seen += "L" + std::to_string(i) + "\n";
  for (int i = 20; i < 40; ++i) snapshot += "L" + std::to_string(i) + "\n";
  f.feed(seen);
  auto u = f.feed(snapshot + "Z\n");
  CHECK(u.lines == Views{"Z"});
  CHECK_FALSE(u.gap);
}

TEST_CASE("log follower: a window of 100,000 lines, then small ones: each line once", "[steps][logs]") {
  // Past 65,536 lines the thread's buffers are let go after the window: the lines handed on
  // point into the snapshot, and the next window starts from empty buffers.
  LogFollower f(LogFollower::memory_for_tail(10));
  std::string big;
  for (int i = 0; i < 100000; ++i) big += "line " + std::to_string(i) + "\n";
  auto u = f.feed(big);
  REQUIRE(u.lines.size() == 100000);
  CHECK(u.lines.back() == "line 99999");
  u = f.feed("line 99998\nline 99999\nline 100000\n");
  CHECK(u.lines == Views{"line 100000"});
  CHECK_FALSE(u.gap);
}
