#pragma once
// Many patterns looked for in one pass over a run of lines (RE2::Set, a single DFA), the way a
// log scanner learns which of its patterns occur in a megabyte of log before it splits it into
// lines. Linear in the text like UserRegex; memory is bounded by kMaxMem, and a pass that would
// need more says so instead of guessing.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
}

namespace flowrun {

class LineRegexSet {
 public:
  static constexpr long long kMaxMem = 16 << 20;  // the DFA's budget (RE2::Options::max_mem)

  LineRegexSet();
  ~LineRegexSet();
  LineRegexSet(LineRegexSet&&) noexcept;
  LineRegexSet& operator=(LineRegexSet&&) noexcept;

  // Adds a substring, or a UserRegex pattern searched per line; returns its index (0, 1, ...).
  // -1 for a regex a run cannot stand for its lines (\A, \z, or a flag group clearing `m`), or one
  // RE2 refuses: the set can then not rule a run out.
  int add_literal(std::string_view text);
  int add_regex(const std::string& pattern);

  // Call once after the adds; false when the set cannot be used (a refused pattern, no memory).
  bool compile();
  bool usable() const { return compiled_; }

  // Fills `found` with the indexes of the patterns that match some line of `lines` ('\n'-separated,
  // no '\r'), and possibly of some that match only across a line end (never fewer). Returns false
  // when the pass ran out of memory: then nothing is known.
  bool occurring(std::string_view lines, std::vector<int>& found) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  bool refused_ = false;
  bool compiled_ = false;
};

}  // namespace flowrun
