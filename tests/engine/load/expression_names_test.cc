#include "engine/load/expression_names.h"

#include <catch2/catch.hpp>
#include <random>
#include <regex>

using namespace flowrun;

namespace {

std::vector<std::string> regex_names(const std::string& code, const std::regex& re) {
  std::vector<std::string> out;
  for (std::sregex_iterator it(code.begin(), code.end(), re), end; it != end; ++it) out.push_back((*it)[2]);
  return out;
}

}  // namespace

TEST_CASE("expression names: the scanners find what the regular expressions they replace find", "[loader]") {
  const std::regex steps_re("(^|[^\\w.])steps\\.([A-Za-z_]\\w*)");
  const std::regex inputs_re("(^|[^\\w.])inputs\\.([A-Za-z_]\\w*)");
  const std::regex call_re("(^|[^\\w.:])([A-Za-z_]\\w*)\\s*\\(");
  const std::regex int_re("[-+]?[0-9]+");
  const std::regex float_re("[-+]?([0-9]+\\.[0-9]*|\\.[0-9]+|[0-9]+)([eE][-+]?[0-9]+)?");
  const std::regex ident_re("[A-Za-z_][A-Za-z0-9_]*");
  std::vector<std::string> samples = {"",
                                      "steps.a.outputs.x == inputs.b",
                                      "steps.a.steps.b",
                                      "xsteps.a + _steps.b + (steps.c) + steps.1",
                                      "f(g(x)) and h (1) or a.b(2) or a:c(3)",
                                      "tostring(steps.x.outputs.n) .. len(inputs.list)",
                                      "steps.",
                                      "steps.a(steps.b)",
                                      "1abc(2) + _x\t(3)",
                                      "1e5",
                                      "-.5e-3",
                                      "+12",
                                      ".",
                                      "-",
                                      "1.",
                                      "e5",
                                      "1e",
                                      "a1_b"};
  std::mt19937 random(18);
  const std::string alphabet = "steps.inputxab_1 (:)e+-9.\t";
  for (int n = 0; n < 3000; ++n) {
    std::string s;
    const int length = static_cast<int>(random() % 24);
    for (int i = 0; i < length; ++i) {
      if (random() % 5 == 0)
        s += random() % 2 ? "steps." : "inputs.";
      else
        s += alphabet[random() % alphabet.size()];
    }
    samples.push_back(s);
  }
  for (const auto& s : samples) {
    INFO(s);
    CHECK(dotted_names(s, "steps") == regex_names(s, steps_re));
    CHECK(dotted_names(s, "inputs") == regex_names(s, inputs_re));
    CHECK(called_names(s) == regex_names(s, call_re));
    CHECK(is_integer_text(s) == std::regex_match(s, int_re));
    CHECK(is_float_text(s) == std::regex_match(s, float_re));
    CHECK(is_identifier(s) == std::regex_match(s, ident_re));
  }
}
