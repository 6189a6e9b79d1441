#pragma once
// Regular expressions written by users (wait-for-marker's marker, capture, validate, fail_on,
// progress) run on RE2: time linear in the text and no recursion, so a pattern such as
// `^(x|y)*z` on a 2 MB line neither hangs nor overflows the stack as std::regex did.
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
}

namespace flowrun {

// A pattern that does not compile. The adapter's own error: a step that compiles a pattern turns
// it into a StepError (load time checks patterns with UserRegex::syntax_error instead).
class RegexError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The part of a text one group matched; nullopt for a group that did not take part.
using RegexGroups = std::vector<std::optional<std::string_view>>;

// One compiled pattern. The syntax is RE2's (close to ECMAScript's: classes, \d \w \s \b,
// (?:...), (?i), lazy quantifiers, {n,m}); backreferences and lookaround are refused. Text is
// matched byte by byte (Latin-1 mode), as std::regex did, so invalid UTF-8 in a log is no
// problem. Copies share the compiled program; const methods are thread-safe.
class UserRegex {
 public:
  // Throws RegexError "'PATTERN' is not a valid regex: WHY".
  explicit UserRegex(const std::string& pattern);

  // Why `pattern` does not compile ("missing ): ..."), or nullopt when it does.
  static std::optional<std::string> syntax_error(const std::string& pattern);

  // Whether the pattern occurs anywhere in `text`.
  bool search(std::string_view text) const;
  // The same, filling `groups` with the whole match then each group (size = groups() + 1).
  bool search(std::string_view text, RegexGroups& groups) const;

  int groups() const;
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  std::shared_ptr<const re2::RE2> re_;
};

}  // namespace flowrun
