#include "engine/io/line_splitter.h"

#include <string.h>  // memmem (GNU)

#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

using flowrun::ErrorKind;
using flowrun::LineSplitter;
using flowrun::StepError;

TEST_CASE("line splitter: every line ending, split anywhere, and a last line without one", "[steps][jsonl]") {
  const std::string text = "a\r\nbb\rccc\n\nd\r\n\r\nlast";
  const std::vector<std::string> expected = {"a", "bb", "ccc", "", "d", "", "last"};
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    LineSplitter splitter;
    std::vector<std::string> lines;
    auto add = [&](std::string_view l) { lines.emplace_back(l); };
    splitter.feed(std::string_view(text).substr(0, cut), add);
    splitter.feed(std::string_view(text).substr(cut), add);
    splitter.finish(add);
    INFO("cut at " << cut);
    CHECK(lines == expected);
  }
  // Chunks without a '\r' take the memchr path; a "\r\n" split before the '\n' must still be one.
  const std::string unix_text = "x\r\nyy\nzzz\n\nend";
  for (size_t cut = 0; cut <= unix_text.size(); ++cut) {
    LineSplitter splitter;
    std::vector<std::string> lines;
    auto add = [&](std::string_view l) { lines.emplace_back(l); };
    splitter.feed(std::string_view(unix_text).substr(0, cut), add);
    splitter.feed(std::string_view(unix_text).substr(cut), add);
    splitter.finish(add);
    INFO("cut at " << cut);
    CHECK(lines == std::vector<std::string>{"x", "yy", "zzz", "", "end"});
  }
  LineSplitter small(4);
  CHECK_THROWS_MATCHES(
      small.feed("abcdef", [](std::string_view) {}), StepError, Catch::Predicate<StepError>([](const StepError& e) {
        return e.kind() == ErrorKind::kPermanent && std::string(e.what()) == "line 1 is longer than 4 bytes";
      }));
}

TEST_CASE("line splitter: a prefilter skips runs of lines it rules out, never a line that matters", "[steps][logs]") {
  // Lines that matter hold "MARK"; the others are noise. Whatever the chunking, every line that
  // matters is handed over, in order, and so is the stream's last complete line.
  std::mt19937 random(7);
  std::string text;
  std::vector<std::string> marked;
  for (int i = 0; i < 3000; ++i) {
    std::string line = "line " + std::to_string(i) + std::string(random() % 40, '.');
    if (random() % 600 == 0) {
      line.insert(random() % line.size(), "MARK");
      marked.push_back(line);
    }
    text += line + "\n";
  }
  const std::string last = "MARK in the last line";
  text += last + "\n";
  marked.push_back(last);
  auto may_matter = [](std::string_view lines) { return ::memmem(lines.data(), lines.size(), "MARK", 4) != nullptr; };
  for (size_t chunk : {1u, 3u, 7u, 64u, 1000u, 4096u, 100000u}) {
    LineSplitter splitter;
    std::vector<std::string> seen;
    for (size_t at = 0; at < text.size(); at += chunk)
      splitter.feed_filtered(std::string_view(text).substr(at, chunk), may_matter,
                             [&](std::string_view l) { seen.emplace_back(l); });
    std::vector<std::string> seen_marked;
    for (const auto& l : seen)
      if (l.find("MARK") != std::string::npos) seen_marked.push_back(l);
    INFO("chunks of " << chunk);
    CHECK(seen_marked == marked);
    CHECK(seen.back() == last);
    if (chunk == 4096) CHECK(seen.size() < 3001 / 2);  // most lines were never split off
  }
  // A prefilter that rules everything out still yields each chunk's first and last line: the
  // reader always knows the newest line.
  LineSplitter splitter;
  std::vector<std::string> seen;
  auto never = [](std::string_view) { return false; };
  auto add = [&](std::string_view l) { seen.emplace_back(l); };
  splitter.feed_filtered("a\nb\nc\nd", never, add);
  splitter.feed_filtered("d\ne\nf\n", never, add);
  CHECK(seen == std::vector<std::string>{"a", "c", "dd", "f"});
  // A chunk with a '\r' is split line by line.
  seen.clear();
  splitter.feed_filtered("g\r\nh\r\ni\n", never, add);
  CHECK(seen == std::vector<std::string>{"g", "h", "i"});
}
