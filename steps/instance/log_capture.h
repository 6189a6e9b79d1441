#pragma once
// What wait-for-marker takes from a log besides the marker: captured values (`capture:`) and,
// when the step fails, the lines around the failure.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/io/json.h"
#include "engine/io/user_regex.h"

namespace flowrun {

// One way to find a capture's value: a regex (its first group that took part, else the whole
// match) and an optional filter the value must match to count.
struct CaptureRule {
  UserRegex pattern;
  std::optional<UserRegex> validate;
};

// capture: NAME: "regex" | {pattern, validate, required} | [rule, rule, ...]
// The value is the last one in the log that a rule accepts; a value failing `validate` is
// skipped and the search goes on (an earlier value stands), so `validate` is a filter.
struct Capture {
  std::string name;
  std::vector<CaptureRule> rules;
  bool required = true;

  // The value this line gives (the last accepted match on it, trying rules in order), if any.
  std::optional<std::string> take(std::string_view line, RegexGroups& groups) const;
};

// Throws StepError::permanent for a malformed spec, RegexError for a bad regex.
std::vector<Capture> captures_from(const Json& spec);

// The regexes of a capture spec, for load-time checks: {pattern or validate text}.
std::vector<Json> capture_regexes(const Json& value);

// The last lines seen, oldest first: for a failure's context and a live view's tail. A monitor
// whose failures show context keeps these for as long as it waits, so they lie back to back in
// one buffer (a line costs its bytes and two more) whose room is reused once warm: no
// allocation per line.
class RecentLines {
 public:
  explicit RecentLines(size_t keep = 0) : lengths_(keep) {}
  // Keeps at most kContextLineMax bytes of `line`; the oldest line goes when `keep` are kept.
  void push(std::string_view line);
  // The last `most` lines kept, oldest first.
  std::vector<std::string> lines(size_t most = SIZE_MAX) const;
  size_t keep() const { return lengths_.size(); }
  // Lines pushed so far, kept or not.
  uint64_t pushed() const { return pushed_; }
  // Lets go of all but the last `most` lines, and of the buffer they do not need.
  void keep_last(size_t most);

 private:
  static constexpr size_t kRoomKeptAnyway = 256;  // bytes: too little to be worth a copy

  std::vector<char> text_;         // the kept lines back to back, oldest first, from text_[front_]
  size_t front_ = 0;               // bytes at the start of text_ that dropped lines still take
  std::vector<uint16_t> lengths_;  // a ring: the kept lines' lengths
  size_t next_ = 0;                // where the next line's length goes (the oldest's, when full)
  size_t count_ = 0;
  uint64_t pushed_ = 0;
};

// At most this many bytes of a log line go into a failure's message or context.
inline constexpr size_t kContextLineMax = 1000;
std::string clip_line(std::string_view line);

// The line a fail_on message names: for a Python traceback's header, the traceback's last
// line (the first unindented line after it, which names the error) when it is in `after`;
// else the matched line itself.
std::string failure_line(std::string_view matched, const std::vector<std::string>& after);

}  // namespace flowrun
