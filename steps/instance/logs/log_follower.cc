#include "steps/instance/logs/log_follower.h"

#include <algorithm>
#include <fstream>
#include <functional>

namespace flowrun {

LogFollower::Update LogFollower::feed(std::string_view snapshot, bool final) {
  // The snapshot's lines and their hashes, in buffers every follower on this thread reuses: a
  // poll of a 1,000-line window made two vectors of a thousand entries and let them go. feed()
  // never waits, so no other follower can use them meanwhile.
  thread_local std::vector<std::string_view> window;  // into snapshot
  thread_local std::vector<uint64_t> hashes;
  window.clear();
  hashes.clear();
  size_t pos = 0;
  while (pos < snapshot.size()) {
    size_t nl = snapshot.find('\n', pos);
    if (nl == std::string_view::npos && !final) break;  // still being written
    size_t end = nl == std::string_view::npos ? snapshot.size() : nl;
    std::string_view line = snapshot.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    window.push_back(line);
    hashes.push_back(std::hash<std::string_view>{}(line));
    pos = end + 1;
  }

  // The largest k such that the last k lines seen are the first k lines of the window.
  size_t overlap = 0;
  for (size_t k = std::min(hashes.size(), recent_.size()); k > 0; --k) {
    if (hashes[k - 1] != recent_.back()) continue;
    if (std::equal(hashes.begin(), hashes.begin() + static_cast<std::ptrdiff_t>(k),
                   recent_.end() - static_cast<std::ptrdiff_t>(k))) {
      overlap = k;
      break;
    }
  }

  Update update;
  update.gap = overlap == 0 && !recent_.empty() && !window.empty();
  update.lines.assign(window.begin() + static_cast<std::ptrdiff_t>(overlap), window.end());
  for (size_t i = overlap; i < hashes.size(); ++i) {
    recent_.push_back(hashes[i]);
    if (recent_.size() > std::max(memory_, window.size())) recent_.pop_front();
  }
  seen_ += static_cast<long long>(update.lines.size());
  return update;
}

std::string read_file_tail(const std::filesystem::path& path, int max_lines) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  std::streamoff from = std::max<std::streamoff>(0, size - (8 << 20));
  in.seekg(from);
  std::string text(static_cast<size_t>(size - from), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));

  // Line k from the end starts after the k-th newline from the end (the final one not counted).
  size_t pos = !text.empty() && text.back() == '\n' ? text.size() - 1 : text.size();
  size_t start = 0;
  for (int lines = 0; pos > 0;) {
    size_t nl = text.rfind('\n', pos - 1);
    if (nl == std::string::npos) break;
    if (++lines == max_lines) {
      start = nl + 1;
      break;
    }
    pos = nl;
  }
  if (from > 0 && start == 0) {  // the window's first line is probably cut in the middle
    auto nl = text.find('\n');
    start = nl == std::string::npos ? text.size() : nl + 1;
  }
  return text.substr(start);
}

}  // namespace flowrun
