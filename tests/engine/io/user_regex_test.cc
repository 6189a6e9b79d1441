#include "engine/io/user_regex.h"

#include <catch2/catch.hpp>

using namespace flowrun;

TEST_CASE("hostile: a backtracking pattern on a 2 MB line finishes without recursion", "[hostile][regex]") {
  const std::string line(2 << 20, 'x');
  UserRegex re("^(x|y)*z");
  CHECK_FALSE(re.search(line));
  CHECK(re.search(line + "z"));
  RegexGroups g;
  CHECK(UserRegex("(x+)+y").search(line + "y", g));
  CHECK(g[0]->size() == line.size() + 1);
}

TEST_CASE("hostile: backreferences and lookaround are refused with a reason", "[hostile][regex]") {
  for (const char* bad : {"(a)\\1", "foo(?=bar)", "(?<!x)y", "(unclosed", "[z-a]", "a**"}) {
    INFO(bad);
    auto error = UserRegex::syntax_error(bad);
    REQUIRE(error);
    CHECK_FALSE(error->empty());
    CHECK_THROWS_AS(UserRegex(bad), RegexError);
  }
  CHECK_THROWS_WITH(UserRegex("(a)\\1"), "'(a)\\1' is not a valid regex: invalid escape sequence: \\1");
}

TEST_CASE("hostile: groups keep std::regex's meaning: whole match first, unmatched groups empty", "[hostile][regex]") {
  RegexGroups g;
  UserRegex progress(R"((\d+)/(\d+)|(\d+)%)");
  REQUIRE(progress.search("frame 12/48 done", g));
  REQUIRE(g.size() == 4);
  CHECK(*g[0] == "12/48");
  CHECK(*g[1] == "12");
  CHECK(*g[2] == "48");
  CHECK_FALSE(g[3]);
  REQUIRE(progress.search("at 45%", g));
  CHECK_FALSE(g[1]);
  CHECK(*g[3] == "45");
  // ECMAScript-style classes, lazy quantifiers, case-insensitivity and \b work.
  CHECK(UserRegex(R"(url=(\S+?)\s)").search("url=http://x/y z", g));
  CHECK(*g[1] == "http://x/y");
  CHECK(UserRegex("(?i)^ERROR\\b").search("error: disk full"));
  // Bytes, not characters: invalid UTF-8 in a log is matched like anything else.
  CHECK(UserRegex("caf.!").search("caf\xE9!"));
  CHECK(UserRegex("caf\xC3\xA9").search("un caf\xC3\xA9"));
}
