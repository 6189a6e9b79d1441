#pragma once
// Splits a byte stream that arrives in chunks into lines, as JSONL readers do: a line ends at
// "\n", "\r" or "\r\n" (also when the pair is split across two chunks), and a last line without
// an ending still counts. Holds at most one partial line, never the whole stream.
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

namespace flowrun {

class LineSplitter {
 public:
  explicit LineSplitter(size_t max_line = 64u << 20) : max_line_(max_line) {}

  // Calls on_line(std::string_view) for every line completed by `chunk`.
  template <typename F>
  void feed(std::string_view chunk, F&& on_line) {
    size_t start = 0;
    for (size_t i = 0; i < chunk.size(); ++i) {
      const char c = chunk[i];
      if (c != '\n' && c != '\r') {
        after_cr_ = false;
        continue;
      }
      const bool lf_after_cr = c == '\n' && after_cr_ && i == start && partial_.empty();
      after_cr_ = c == '\r';
      if (lf_after_cr) {  // the second half of "\r\n"
        start = i + 1;
        continue;
      }
      emit(chunk.substr(start, i - start), on_line);
      start = i + 1;
    }
    partial_.append(chunk.substr(start));
    if (partial_.size() > max_line_)
      throw std::length_error("line " + std::to_string(lines_ + 1) + " is longer than " + std::to_string(max_line_) +
                              " bytes");
  }

  // Hands over a last line that had no line ending.
  template <typename F>
  void finish(F&& on_line) {
    if (!partial_.empty()) emit({}, on_line);
  }

  size_t lines() const { return lines_; }

 private:
  template <typename F>
  void emit(std::string_view tail, F& on_line) {
    ++lines_;
    if (partial_.empty()) {
      on_line(tail);
      return;
    }
    partial_.append(tail);
    std::string line;
    line.swap(partial_);
    on_line(std::string_view(line));
  }

  size_t max_line_;
  size_t lines_ = 0;
  bool after_cr_ = false;
  std::string partial_;
};

}  // namespace flowrun
