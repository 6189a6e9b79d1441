#pragma once
// Keeps what a process writes on one stream within bounds, whatever it writes: at most
// `capture_limit` bytes of the stream, and at most `max_line` bytes of any one line handed to
// `on_line` (a longer line is cut and says so). The rest is counted, never stored.
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace flowrun {

class OutputCapture {
 public:
  using LineHandler = std::function<void(std::string_view line, bool is_stderr)>;
  static constexpr size_t kMaxLine = 64u << 10;

  OutputCapture(size_t capture_limit, bool is_stderr, const LineHandler* on_line, size_t max_line = kMaxLine)
      : limit_(capture_limit), max_line_(max_line), is_stderr_(is_stderr), on_line_(on_line) {}

  void feed(std::string_view chunk);
  // Hands over a last line that had no line ending.
  void finish();

  const std::string& captured() const { return captured_; }
  std::string take_captured() { return std::move(captured_); }
  // Bytes of the stream beyond capture_limit (not kept in captured()).
  size_t dropped() const { return dropped_; }

 private:
  void emit_line();

  size_t limit_;
  size_t max_line_;
  bool is_stderr_;
  const LineHandler* on_line_;  // borrowed; may be null or empty
  std::string captured_;
  size_t dropped_ = 0;
  std::string line_;        // the current line, at most max_line_ bytes
  size_t line_cut_ = 0;     // bytes of the current line beyond max_line_
  bool line_open_ = false;  // bytes arrived since the last line ending
};

}  // namespace flowrun
