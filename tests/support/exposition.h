#pragma once
// A strict reader of the Prometheus text exposition format (0.0.4), for tests: every line must
// be a # HELP, a # TYPE, another comment, or a sample `name{label="value",...} value`, each
// sample of a family declared by # TYPE before it.
#include <map>
#include <string>
#include <vector>

namespace flowrun::test {

struct Exposition {
  // "name{a=\"x\",b=\"y\"}" (labels sorted) -> value.
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;  // family -> counter, gauge, histogram, ...
  std::vector<std::string> errors;           // "line N: why", one per bad line
  // The value of a series, or -1 when there is none.
  double value(const std::string& name, const std::map<std::string, std::string>& labels = {}) const;
};

Exposition parse_exposition(const std::string& text);
std::string series_key(const std::string& name, const std::map<std::string, std::string>& labels);

}  // namespace flowrun::test
