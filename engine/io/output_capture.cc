#include "engine/io/output_capture.h"

#include <algorithm>
#include <cstring>

namespace flowrun {

void OutputCapture::feed(std::string_view chunk) {
  const size_t keep = std::min(chunk.size(), limit_ - std::min(limit_, captured_.size()));
  captured_.append(chunk.data(), keep);
  dropped_ += chunk.size() - keep;
  if (!on_line_ || !*on_line_) return;
  while (!chunk.empty()) {
    const void* nl = std::memchr(chunk.data(), '\n', chunk.size());
    const size_t end = nl ? static_cast<size_t>(static_cast<const char*>(nl) - chunk.data()) : chunk.size();
    const size_t room = max_line_ - std::min(max_line_, line_.size());
    line_.append(chunk.data(), std::min(end, room));
    line_cut_ += end - std::min(end, room);
    line_open_ = true;
    if (!nl) break;
    emit_line();
    chunk.remove_prefix(end + 1);
  }
}

void OutputCapture::finish() {
  if (on_line_ && *on_line_ && line_open_) emit_line();
}

void OutputCapture::emit_line() {
  if (line_cut_ > 0)
    line_ += " [line cut at " + std::to_string(max_line_) + " bytes; " + std::to_string(line_cut_) +
             " more bytes not shown]";
  (*on_line_)(line_, is_stderr_);
  line_.clear();
  line_cut_ = 0;
  line_open_ = false;
}

}  // namespace flowrun
