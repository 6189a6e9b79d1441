#pragma once
// What wait-for-marker looks for in each line of a log: the marker, fail_on lines, captured
// values and progress. It reads lines and keeps what it found; where the lines come from
// (steps/instance/logs/) and what the step does with the result (marker_poller) are not its job.
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/io/json.h"
#include "engine/io/line_regex_set.h"
#include "engine/io/literal_finder.h"
#include "engine/io/logging.h"
#include "engine/io/user_regex.h"
#include "steps/instance/log_capture.h"

namespace flowrun {

// A literal substring, or {regex: "..."}.
class LinePattern {
 public:
  // Throws StepError::permanent for a value that is neither, RegexError for a bad regex.
  static LinePattern from(const Json& v);
  bool matches(std::string_view line) const;
  const std::string& text() const { return text_; }
  bool is_regex() const { return regex_.has_value(); }
  // For a substring: whether it occurs anywhere in `text` (many lines at once).
  bool occurs_in(std::string_view text) const;

 private:
  std::string text_;
  std::optional<UserRegex> regex_;
  LiteralFinder literal_{""};  // a substring's search (a regex's text is not searched as one)
};

// The step's rules for a line, from its `with`: marker, fail_on, capture, progress.
struct ScanRules {
  LinePattern marker;
  std::vector<LinePattern> fail_on;
  std::vector<Capture> captures;
  std::optional<UserRegex> progress;

  // Throws StepError::permanent for a malformed rule, RegexError for a bad regex.
  static ScanRules from(const Json& with);
};

// "[#########...........]" for a percentage.
std::string progress_bar(double percent);

// Reads a log line by line, oldest first. Before the marker a fail_on line is a failure (the
// lines after it that the same read delivers are its context, up to kMaxLinesAfter) and a
// progress line is reported as a bar; after the marker only captures count.
class LineScanner {
 public:
  static constexpr size_t kMaxLinesAfter = 200;

  // `context_lines`: lines before a failure kept for its context (clamped to 0..1000);
  // `tail_lines`: the last lines of a read kept for a live view's tail (tail()), in the same
  // buffer. Between reads (end_read) only the context's lines are kept.
  LineScanner(ScanRules rules, int context_lines, size_t tail_lines = 0);

  // Looks at one line; returns whether to read on (false once a failure has all the context it
  // keeps). `show`, when set, is handed each line to print, except a progress line, whose bar
  // goes to `log` instead (info, once per tenth), as each captured value does (debug, after `show`).
  bool scan(std::string_view line, const StepLog& log, const std::function<void(std::string_view)>& show = {});

  // A test for a run of whole lines ('\n'-ended), true when one of them may matter: the lines
  // of a run it rules out need not be scanned, except its last, which the reader still hands to
  // scan(). Ruling a run out does what scanning it would have done: its last lines are kept as a
  // failure's context, and its last progress line (searched backward) reports progress; a run
  // where only progress occurs is ruled out that way. Substrings alone are searched with LiteralFinder,
  // anything else with one RE2::Set pass over the run. Empty when every line must be scanned (a
  // failure was seen, or a pattern the set cannot search per run: \A, \z, (?-m)). `log` gets the
  // progress bar, as in scan().
  std::function<bool(std::string_view)> prefilter(const StepLog& log);

  struct Failure {
    std::string message;               // one line: the fail_on text and the line it names
    std::vector<std::string> context;  // the lines before it, it, and the lines after it
  };
  // The fail_on line seen, if any.
  std::optional<Failure> failure() const;

  bool marker_seen() const { return !marker_line_.empty(); }
  const std::string& marker_line() const { return marker_line_; }
  // The name of a required capture that no line gave, if any.
  std::optional<std::string> missing_capture() const;
  // The captured values by name.
  const Json& captured() const;
  std::optional<double> progress() const { return progress_percent_; }
  // What the progress pattern matched last ("frame 420/1000", "42%"), "" before any.
  const std::string& progress_text() const { return progress_text_; }
  const std::string& last_line() const { return last_line_; }
  // The last lines read, as a failure's context: at most context_lines + 1.
  std::vector<std::string> recent_lines() const { return recent_.lines(context_keep_ + 1); }
  // The last lines read, at most `most` (and at most the tail_lines kept, then those read after
  // a failure).
  std::vector<std::string> tail(size_t most) const;
  // The lines kept for the tail so far (ruled-out runs' included): the difference between two
  // reads is how many of the tail's lines the later one added.
  uint64_t lines_kept() const { return recent_.pushed() + (failure_ ? failure_->after.size() : 0); }
  // A read is over: the lines the context does not need are let go (a monitor keeps no tail
  // while it waits; the live state has it).
  void end_read() { recent_.keep_last(context_keep_); }

 private:
  std::optional<std::string> check_fail_on(std::string_view line) const;
  void capture(std::string_view line, const StepLog& log);
  bool report_progress(std::string_view line, const StepLog& log);
  bool run_may_matter(std::string_view lines, const StepLog& log);
  void skip_run(std::string_view lines, bool progress, const StepLog& log);

  ScanRules rules_;
  bool only_substrings_;   // marker and fail_on substrings, no capture or progress: LiteralFinder will do
  LineRegexSet patterns_;  // every pattern, for runs of lines; index progress_index_ is progress
  int progress_index_ = -1;
  std::vector<int> found_;  // reused by every run
  size_t context_keep_;     // lines kept before a failing one
  RegexGroups groups_;      // reused by every search, so a line costs no allocation for it
  RecentLines recent_;      // the lines before a failure and the failing one, or the tail
  // A fail_on line seen: out of line, as a waiting monitor mostly never sees one.
  struct FailureSeen {
    std::string headline;
    std::string line;
    std::vector<std::string> after;  // the lines read after it
  };
  std::string last_line_;
  std::unique_ptr<FailureSeen> failure_;
  Json captured_;  // an object once a value is captured
  std::string marker_line_;
  std::optional<double> progress_percent_;
  std::string progress_text_;
  int last_decile_ = -1;
};

}  // namespace flowrun
