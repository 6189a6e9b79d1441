#include "engine/io/param_type.h"

#include <catch2/catch.hpp>

using namespace flowrun;

TEST_CASE("param types: every name parses back to its type, other names do not", "[params]") {
  REQUIRE(param_type_names().size() == 9);
  for (const auto& name : param_type_names()) {
    auto type = parse_param_type(name);
    REQUIRE(type);
    CHECK(to_string(*type) == name);
  }
  CHECK(parse_param_type("bool") == ParamType::kBool);
  CHECK(parse_param_type("string|list") == ParamType::kStringOrList);
  CHECK_FALSE(parse_param_type("boolean"));
  CHECK_FALSE(parse_param_type("Bool"));
  CHECK_FALSE(parse_param_type(""));
}

TEST_CASE("param types: which literal values each type accepts", "[params]") {
  CHECK(value_has_type(true, ParamType::kBool));
  CHECK_FALSE(value_has_type("yes please", ParamType::kBool));
  CHECK_FALSE(value_has_type(7, ParamType::kBool));
  CHECK(value_has_type(7, ParamType::kInteger));
  CHECK_FALSE(value_has_type(0.5, ParamType::kInteger));
  CHECK(value_has_type(0.5, ParamType::kNumber));
  CHECK(value_has_type("30s", ParamType::kDuration));
  CHECK_FALSE(value_has_type("30", ParamType::kDuration));
  CHECK(value_has_type(3, ParamType::kString));  // a plain scalar is text to a string parameter
  CHECK_FALSE(value_has_type(nullptr, ParamType::kString));
  CHECK(value_has_type(Json::array(), ParamType::kStringOrList));
  CHECK_FALSE(value_has_type(Json::object(), ParamType::kStringOrList));
  CHECK(value_has_type(Json::object(), ParamType::kMap));
  CHECK(value_has_type(Json::array(), ParamType::kList));
  CHECK(value_has_type(nullptr, ParamType::kAny));
}
