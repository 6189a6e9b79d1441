#pragma once
// Splits a byte stream that arrives in chunks into lines, as JSONL readers do: a line ends at
// "\n", "\r" or "\r\n" (also when the pair is split across two chunks), and a last line without
// an ending still counts. Holds at most one partial line, never the whole stream: a longer one
// fails the step reading it (StepError::permanent).
#include <string.h>  // memrchr (GNU)

#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>

#include "engine/io/step_error.h"

namespace flowrun {

class LineSplitter {
 public:
  explicit LineSplitter(size_t max_line = 64u << 20) : max_line_(max_line) {}

  // Calls on_line(std::string_view) for every line completed by `chunk`.
  template <typename F>
  void feed(std::string_view chunk, F&& on_line) {
    // Fast path, the usual case: no '\r' anywhere, so lines end at '\n' alone and memchr (SIMD
    // in glibc) finds them; a byte-by-byte loop was a third of grep's speed on a large log.
    if (!chunk.empty() && std::memchr(chunk.data(), '\r', chunk.size()) == nullptr) {
      size_t start = 0;
      if (after_cr_ && chunk[0] == '\n' && partial_.empty()) start = 1;  // the rest of a "\r\n"
      after_cr_ = false;
      while (start < chunk.size()) {
        const void* nl = std::memchr(chunk.data() + start, '\n', chunk.size() - start);
        if (!nl) break;
        const size_t end = static_cast<size_t>(static_cast<const char*>(nl) - chunk.data());
        emit(chunk.substr(start, end - start), on_line);
        start = end + 1;
      }
      keep_partial(chunk.substr(std::min(start, chunk.size())));
      return;
    }
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
    keep_partial(chunk.substr(start));
  }

  // Like feed(), for a reader that acts on few lines (a marker, an error string) and can tell
  // from many whole lines at once whether one of them may matter, the way grep searches a whole
  // buffer before it looks for line ends. The complete lines lying wholly inside `chunk` are
  // handed over only when `may_matter(span of those lines)`; otherwise only the last of them is
  // (the reader still learns the latest line); the rest are not even counted, since counting
  // would cost as much as splitting. A chunk holding '\r' goes through feed().
  template <typename Prefilter, typename F>
  void feed_filtered(std::string_view chunk, Prefilter&& may_matter, F&& on_line) {
    const char* first_nl = static_cast<const char*>(std::memchr(chunk.data(), '\n', chunk.size()));
    if (!first_nl || std::memchr(chunk.data(), '\r', chunk.size()) != nullptr) {
      feed(chunk, on_line);
      return;
    }
    // The first line may continue a partial one: it goes through feed(), which joins them.
    const size_t first_end = static_cast<size_t>(first_nl - chunk.data()) + 1;
    feed(chunk.substr(0, first_end), on_line);
    const size_t last_end =
        static_cast<size_t>(static_cast<const char*>(::memrchr(chunk.data(), '\n', chunk.size())) - chunk.data()) + 1;
    const std::string_view whole = chunk.substr(first_end, last_end - first_end);  // only complete lines
    if (!whole.empty()) {
      if (may_matter(whole)) {
        feed(whole, on_line);
      } else {
        const std::string_view body = whole.substr(0, whole.size() - 1);  // without the last '\n'
        const size_t last_start = body.rfind('\n');
        ++lines_;
        on_line(last_start == std::string_view::npos ? body : body.substr(last_start + 1));
      }
    }
    keep_partial(chunk.substr(last_end));
  }

  // Hands over a last line that had no line ending.
  template <typename F>
  void finish(F&& on_line) {
    if (!partial_.empty()) emit({}, on_line);
  }

  // Lines handed to on_line so far.
  size_t lines() const { return lines_; }

 private:
  void keep_partial(std::string_view rest) {
    partial_.append(rest);
    if (partial_.size() > max_line_)
      throw StepError::permanent("line " + std::to_string(lines_ + 1) + " is longer than " + std::to_string(max_line_) +
                                 " bytes");
  }

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
