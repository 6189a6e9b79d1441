#pragma once
#include <string>
#include <vector>

namespace flowrun {

// A position in a workflow file, 1-based (yaml-cpp marks are 0-based: convert on the way in).
struct Location {
  std::string file;
  int line = 0;
  int col = 0;
};

struct Diagnostic {
  Location loc;
  std::string message;
  std::string hint;  // one sentence saying how to fix it; may be empty
};

// Collects workflow-file errors instead of throwing, so one `validate` reports all of them.
class Diagnostics {
 public:
  void error(const Location& loc, std::string message, std::string hint = {});
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  const std::vector<Diagnostic>& items() const { return items_; }
  // Orders by line and column (stable), so a file's errors read from top to bottom.
  void sort_by_position();

 private:
  std::vector<Diagnostic> items_;
};

// "file:line:col: error: message", then the source line with a caret under the column, then
// "  hint: ..." when there is a hint. `source` is the file's text (may be empty).
std::string format_diagnostic(const Diagnostic& d, const std::string& source);

// The closest candidate within a small edit distance ("retyr" -> "retry"), or empty; a candidate
// that differs in case only ("tojson" -> "toJSON") wins over any other.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace flowrun
