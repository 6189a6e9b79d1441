#include "engine/io/literal_finder.h"

#include <catch2/catch.hpp>
#include <random>
#include <string>

using flowrun::LiteralFinder;

TEST_CASE("literal finder: the same first match as string find, on texts of few letters", "[io][literal]") {
  std::mt19937 rng(18);
  // Few letters make repeated prefixes and near misses common; 'Z' and '_' are the rare bytes.
  const std::string letters = "aZ_ b";
  auto random_text = [&](size_t n) {
    std::string s;
    for (size_t i = 0; i < n; ++i) s += letters[rng() % letters.size()];
    return s;
  };
  for (int round = 0; round < 20000; ++round) {
    const std::string needle = random_text(1 + rng() % 6);
    const std::string text = random_text(rng() % 80);
    INFO("needle '" << needle << "' text '" << text << "'");
    CHECK(LiteralFinder(needle).find(text) == std::string_view(text).find(needle));
  }
}

TEST_CASE("literal finder: at the start, at the very end, absent, empty, shorter text", "[io][literal]") {
  const LiteralFinder marker("VASTAI_PIPELINE_COMPLETED_SUCCESSFULLY");
  const std::string m = marker.needle();
  CHECK(marker.find(m) == 0);
  CHECK(marker.find(m + " tail") == 0);
  CHECK(marker.find(std::string(1000, '.') + m) == 1000);
  CHECK(marker.find(std::string(1000, '.') + m.substr(0, m.size() - 1)) == std::string_view::npos);
  CHECK(marker.find("VASTAI_PIPELINE_COMPLETED_SUCCESSFULL VASTAI_PIPELINE_COMPLETED_SUCCESSFULLY") == 38);
  CHECK(marker.find(m.substr(1)) == std::string_view::npos);
  CHECK(marker.find("") == std::string_view::npos);
  CHECK(LiteralFinder("").find("abc") == 0);
  CHECK(LiteralFinder("x").find("abcx") == 3);
  const std::string binary("\xff\x00\xfe\n\x00Z", 6);
  CHECK(LiteralFinder(std::string("\x00Z", 2)).find(binary) == 4);
}

TEST_CASE("literal finder: a text full of the rare byte still finds the match, past the memchr check",
          "[io][literal]") {
  // Every byte is the needle's rarest one, so every position is a candidate until memmem takes over.
  const std::string needle = std::string(300, 'Q') + "R";
  std::string text(1 << 20, 'Q');
  CHECK(LiteralFinder(needle).find(text) == std::string_view::npos);
  text += "R";
  CHECK(LiteralFinder(needle).find(text) == text.size() - needle.size());
  text.replace(5000, 1, "R");
  CHECK(LiteralFinder(needle).find(text) == 5000 - 300);
}

TEST_CASE("literal finder: the rank puts logs' common bytes above uppercase and control bytes", "[io][literal]") {
  CHECK(LiteralFinder::frequency_rank(' ') > LiteralFinder::frequency_rank('e'));
  CHECK(LiteralFinder::frequency_rank('e') > LiteralFinder::frequency_rank('V'));
  CHECK(LiteralFinder::frequency_rank('0') > LiteralFinder::frequency_rank('Q'));
  CHECK(LiteralFinder::frequency_rank('Q') > LiteralFinder::frequency_rank(0));
  CHECK(LiteralFinder::frequency_rank(0xff) == 0);
}
