#include "engine/model/diagnostics.h"

#include <algorithm>
#include <cctype>
#include <sstream>
#include <tuple>

namespace flowrun {

void Diagnostics::error(const Location& loc, std::string message, std::string hint) {
  items_.push_back({loc, std::move(message), std::move(hint)});
}

void Diagnostics::sort_by_position() {
  std::stable_sort(items_.begin(), items_.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.loc.line, a.loc.col) < std::tie(b.loc.line, b.loc.col);
  });
}

std::string format_diagnostic(const Diagnostic& d, const std::string& source) {
  std::ostringstream out;
  out << d.loc.file;
  if (d.loc.line > 0) out << ":" << d.loc.line << ":" << d.loc.col;
  out << ": error: " << d.message << "\n";
  if (d.loc.line > 0 && !source.empty()) {
    std::istringstream lines(source);
    std::string line;
    for (int i = 0; i < d.loc.line && std::getline(lines, line); ++i) {
    }
    if (!line.empty()) {
      out << "    " << line << "\n";
      out << "    " << std::string(std::max(0, d.loc.col - 1), ' ') << "^\n";
    }
  }
  if (!d.hint.empty()) out << "  hint: " << d.hint << "\n";
  return out.str();
}

namespace {
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}
}  // namespace

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  auto lower = [](std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  // A difference in case only ("tojson" for "toJSON") is the closest of all.
  for (const auto& c : candidates)
    if (c != word && lower(c) == lower(word)) return c;
  std::string best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

}  // namespace flowrun
