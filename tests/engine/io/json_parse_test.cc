#include "engine/io/json_parse.h"

#include <catch2/catch.hpp>

#include "engine/io/step_error.h"

using namespace flowrun;

TEST_CASE("hostile: JSON nested 100,000 deep is refused before it is built", "[hostile][json]") {
  const std::string deep(100000, '[');
  try {
    (void)parse_json_limited(deep);
    FAIL("no error");
  } catch (const StepError& e) {
    CHECK(e.kind() == ErrorKind::kPermanent);
    CHECK(std::string(e.what()) == "JSON nested deeper than 512 levels");
  }
  CHECK_THROWS_AS(parse_json_limited(std::string(600, '{')), StepError);
}

TEST_CASE("hostile: JSON within the depth limit parses as before", "[hostile][json]") {
  std::string ok = std::string(512, '[') + std::string(512, ']');
  Json v = parse_json_limited(ok);
  CHECK(v.is_array());
  CHECK_THROWS_AS(parse_json_limited("[" + ok + "]"), StepError);
  CHECK(parse_json_limited(R"({"a": [1, {"b": "x"}]})")["a"][1]["b"] == "x");
  // Brackets inside strings, escaped quotes included, do not count.
  const std::string in_string = "{\"s\": \"" + std::string(1000, '[') + "\\\"" + std::string(1000, '{') + "\"}";
  CHECK(parse_json_limited(in_string)["s"].get<std::string>().size() == 2001);
  CHECK(parse_json_limited("[1, 2", 4).is_discarded());     // not JSON: discarded, not thrown
  CHECK(parse_json_limited("\"caf\xE9\"").is_discarded());  // nor is invalid UTF-8
  CHECK(parse_json_limited("").is_discarded());
  CHECK(json_nesting_depth("[[],[[]]]", 100) == 3);
}
