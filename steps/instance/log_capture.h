#pragma once
// What wait-for-marker takes from a log besides the marker: captured values (`capture:`) and,
// when the step fails, the lines around the failure.
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

// The last lines seen, kept for the message of a failure: a fixed ring of strings whose
// storage is reused, so keeping them costs no allocation per line once warm.
class RecentLines {
 public:
  explicit RecentLines(size_t keep = 0) : ring_(keep) {}
  void push(std::string_view line);
  std::vector<std::string> lines() const;  // oldest first

 private:
  std::vector<std::string> ring_;
  size_t next_ = 0;
  size_t count_ = 0;
};

// At most this many bytes of a log line go into a failure's message or context.
inline constexpr size_t kContextLineMax = 1000;
std::string clip_line(std::string_view line);

// The line a fail_on message names: for a Python traceback's header, the traceback's last
// line (the first unindented line after it, which names the error) when it is in `after`;
// else the matched line itself.
std::string failure_line(std::string_view matched, const std::vector<std::string>& after);

}  // namespace flowrun
