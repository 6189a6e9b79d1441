#include "support/exposition.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <set>
#include <sstream>

namespace flowrun::test {
namespace {

bool name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':'; }
bool name_char(char c) { return name_start(c) || std::isdigit(static_cast<unsigned char>(c)); }

bool valid_name(const std::string& s) {
  if (s.empty() || !name_start(s[0])) return false;
  for (char c : s)
    if (!name_char(c)) return false;
  return true;
}

// A float as Prometheus reads one: decimal or exponent notation, NaN, +Inf, -Inf.
bool parse_value(const std::string& s, double& out) {
  std::string lower;
  for (char c : s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "nan") return out = NAN, true;
  if (lower == "+inf" || lower == "inf") return out = INFINITY, true;
  if (lower == "-inf") return out = -INFINITY, true;
  if (s.empty()) return false;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && std::isfinite(out);
}

// The family a sample belongs to: its own name, or a histogram's or summary's without the suffix.
std::string family_of(const std::string& name, const std::map<std::string, std::string>& types) {
  if (types.count(name)) return name;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string sfx = suffix;
    if (name.size() > sfx.size() && name.compare(name.size() - sfx.size(), sfx.size(), sfx) == 0) {
      const std::string base = name.substr(0, name.size() - sfx.size());
      auto it = types.find(base);
      if (it != types.end() && (it->second == "histogram" || it->second == "summary")) return base;
    }
  }
  return "";
}

}  // namespace

std::string series_key(const std::string& name, const std::map<std::string, std::string>& labels) {
  std::string key = name;
  if (labels.empty()) return key;
  key += "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    key += (first ? "" : ",") + k + "=\"" + v + "\"";
    first = false;
  }
  return key + "}";
}

double Exposition::value(const std::string& name, const std::map<std::string, std::string>& labels) const {
  auto it = samples.find(series_key(name, labels));
  return it == samples.end() ? -1 : it->second;
}

Exposition parse_exposition(const std::string& text) {
  Exposition e;
  std::set<std::string> helped;
  std::istringstream in(text);
  std::string line;
  int number = 0;
  auto bad = [&](const std::string& why) { e.errors.push_back("line " + std::to_string(number) + ": " + why); };
  if (!text.empty() && text.back() != '\n') e.errors.push_back("the text does not end with a newline");
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::istringstream words(line);
      std::string hash, keyword, name;
      words >> hash >> keyword >> name;
      if (hash != "#") continue;  // "#foo": a comment
      if (keyword == "HELP") {
        if (!valid_name(name)) bad("HELP of a bad name: " + line);
        if (!helped.insert(name).second) bad("second HELP for " + name);
      } else if (keyword == "TYPE") {
        std::string type, extra;
        words >> type >> extra;
        static const std::set<std::string> kTypes{"counter", "gauge", "histogram", "summary", "untyped"};
        if (!valid_name(name) || !kTypes.count(type) || !extra.empty()) bad("bad TYPE line: " + line);
        if (e.types.count(name)) bad("second TYPE for " + name);
        e.types[name] = type;
      }
      continue;
    }
    // name{labels} value [timestamp]
    size_t i = 0;
    while (i < line.size() && name_char(line[i])) ++i;
    const std::string name = line.substr(0, i);
    if (!valid_name(name)) {
      bad("not a sample: " + line);
      continue;
    }
    std::map<std::string, std::string> labels;
    bool ok = true;
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (ok && i < line.size() && line[i] != '}') {
        size_t start = i;
        while (i < line.size() && name_char(line[i])) ++i;
        const std::string label = line.substr(start, i - start);
        if (!valid_name(label) || i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') {
          ok = false;
          break;
        }
        i += 2;
        std::string value;
        while (i < line.size() && line[i] != '"') {
          if (line[i] == '\\') {
            if (i + 1 >= line.size() || (line[i + 1] != '\\' && line[i + 1] != '"' && line[i + 1] != 'n')) {
              ok = false;
              break;
            }
            value += line[i + 1] == 'n' ? '\n' : line[i + 1];
            i += 2;
            continue;
          }
          value += line[i++];
        }
        if (!ok || i >= line.size()) {
          ok = false;
          break;
        }
        ++i;  // the closing quote
        if (labels.count(label)) ok = false;
        labels[label] = value;
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (!ok || i >= line.size() || line[i] != '}') {
        bad("bad labels: " + line);
        continue;
      }
      ++i;
    }
    if (i >= line.size() || line[i] != ' ') {
      bad("no value: " + line);
      continue;
    }
    std::istringstream rest(line.substr(i + 1));
    std::string value_text, timestamp, extra;
    rest >> value_text >> timestamp >> extra;
    double value = 0;
    if (!parse_value(value_text, value)) {
      bad("bad value: " + line);
      continue;
    }
    if (!timestamp.empty()) {
      char* end = nullptr;
      std::strtoll(timestamp.c_str(), &end, 10);
      if (*end != '\0' || !extra.empty()) {
        bad("bad timestamp: " + line);
        continue;
      }
    }
    const std::string family = family_of(name, e.types);
    if (family.empty()) bad("a sample of no declared family: " + line);
    const std::string key = series_key(name, labels);
    if (e.samples.count(key)) bad("the same series twice: " + key);
    e.samples[key] = value;
  }
  return e;
}

}  // namespace flowrun::test
