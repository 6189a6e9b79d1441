#include "engine/io/utf8.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>

#include "engine/load/utf8_check.h"

using namespace flowrun;

namespace {
const std::string kFffd = "\xEF\xBF\xBD";
}

TEST_CASE("hostile: valid UTF-8 passes through unchanged", "[hostile][utf8]") {
  for (const std::string s :
       {"", "plain ascii", "caf\xC3\xA9", "\xE2\x82\xAC 5", "\xF0\x9F\x98\x80", "\xF4\x8F\xBF\xBF"}) {
    INFO(s);
    CHECK(valid_utf8(s) == s);
    CHECK(valid_utf8_prefix(s) == s.size());
    CHECK_FALSE(first_invalid_utf8(s));
  }
}

TEST_CASE("hostile: invalid bytes become U+FFFD, one per maximal invalid subpart", "[hostile][utf8]") {
  CHECK(valid_utf8("caf\xE9\n") == "caf" + kFffd + "\n");  // Latin-1 é
  CHECK(valid_utf8("\xFF") == kFffd);
  CHECK(valid_utf8("a\xFF\xFE"
                   "b") == "a" + kFffd + kFffd + "b");
  CHECK(valid_utf8("\xE2\x82"
                   "A") == kFffd + "A");                                   // a truncated sequence counts once
  CHECK(valid_utf8("x\xE2\x82") == "x" + kFffd);                           // cut off at the end
  CHECK(valid_utf8("\xC0\xAF") == kFffd + kFffd);                          // overlong: each byte invalid
  CHECK(valid_utf8("\xED\xA0\x80") == kFffd + kFffd + kFffd);              // a surrogate
  CHECK(valid_utf8("\xF4\x90\x80\x80") == kFffd + kFffd + kFffd + kFffd);  // above U+10FFFF
  CHECK(valid_utf8_prefix("ab\xFF"
                          "cd") == 2);
}

TEST_CASE("hostile: make_valid_utf8 fixes strings and object keys at any depth", "[hostile][utf8]") {
  Json v = {{"out", "caf\xE9"}, {"list", {"ok", "\xFF"}}, {"k\xFE", {{"inner\xFF", 1}}}};
  make_valid_utf8(v);
  CHECK(v["out"] == "caf" + kFffd);
  CHECK(v["list"][1] == kFffd);
  REQUIRE(v.contains("k" + kFffd));
  CHECK(v["k" + kFffd].contains("inner" + kFffd));
  CHECK_NOTHROW(v.dump());  // what threw type_error.316 before

  // Deep values are walked without recursion.
  Json deep = "\xFF";
  for (int i = 0; i < 100000; ++i) {
    Json outer = Json::array();
    outer.push_back(std::move(deep));  // moved, not copied: a copy would recurse per level
    deep = std::move(outer);
  }
  CHECK_NOTHROW(make_valid_utf8(deep));
  const Json* leaf = &deep;
  while (leaf->is_array()) leaf = &(*leaf)[0];
  CHECK(*leaf == kFffd);
  // Taken apart level by level: the recursive destructor of nlohmann's json is not trusted here.
  while (deep.is_array() && !deep.empty()) {
    Json inner = std::move(deep[0]);
    deep = std::move(inner);
  }
}

TEST_CASE("hostile: dump_json writes U+FFFD instead of throwing", "[hostile][utf8]") {
  Json v = {{"a", "\xFF"}};
  CHECK_THROWS(v.dump());
  CHECK(dump_json(v) == "{\"a\":\"" + kFffd + "\"}");
}

TEST_CASE("dump_json_sized writes dump_json's text in a string of exactly its size", "[utf8]") {
  Json items = Json::array();
  for (int i = 0; i < 3000; ++i)
    items.push_back(
        {{"index", i}, {"item", "x\xFF\u00e9\n" + std::to_string(i)}, {"ratio", i / 7.0}, {"ok", i % 2 == 0}});
  for (const Json& v : {Json(), Json::object(), Json("\xC3"), Json(1.5e300), Json{{"items", items}, {"n", nullptr}}}) {
    const std::string text = dump_json_sized(v);
    CHECK(text == dump_json(v));
    CHECK(text.capacity() == std::max<size_t>(text.size(), std::string().capacity()));  // short ones in place
  }
}

TEST_CASE("hostile: a workflow file that is not UTF-8 gets a diagnostic at its first bad byte", "[hostile][utf8]") {
  Diagnostics diags;
  check_valid_utf8("steps:\n  - id: a\n    type: log\n    with: {message: \"caf\xE9\"}\n", "wf.yaml", diags);
  REQUIRE(diags.size() == 1);
  const Diagnostic& d = diags.items()[0];
  CHECK(d.loc.file == "wf.yaml");
  CHECK(d.loc.line == 4);
  CHECK(d.loc.col == 25);
  CHECK(d.message == "the file is not valid UTF-8: byte 0xE9 here");
  Diagnostics clean;
  check_valid_utf8("steps: []\n", "wf.yaml", clean);
  CHECK(clean.empty());
}
