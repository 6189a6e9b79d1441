#include "steps/instance/logs/log_follower.h"

#include <algorithm>
#include <cassert>
#include <fstream>
#include <functional>
#include <random>

namespace flowrun {

namespace {

// Runs of lines are compared by a polynomial hash of their line hashes, modulo the prime
// 2^61 - 1: two different runs of n lines agree for at most n of the ~2^61 bases.
constexpr uint64_t kPrime = (uint64_t{1} << 61) - 1;

uint64_t reduce(uint64_t x) {  // x < 2^64 -> x mod kPrime
  x = (x & kPrime) + (x >> 61);
  return x >= kPrime ? x - kPrime : x;
}

// a, b < kPrime: a product of more than 122 bits would lose its top in `product >> 61`.
uint64_t mul_mod(uint64_t a, uint64_t b) {
  const unsigned __int128 product = static_cast<unsigned __int128>(a) * b;
  return reduce((static_cast<uint64_t>(product) & kPrime) + static_cast<uint64_t>(product >> 61));
}

uint64_t sub_mod(uint64_t a, uint64_t b) { return a >= b ? a - b : a + kPrime - b; }

// Drawn once a process, so that two runs of different lines agree by chance, not because a log
// was written to make them (a line itself is hashed with std::hash, which has no seed: two
// lines written to collide are taken for one another, as when whole hashes were kept).
uint64_t base() {
  static const uint64_t drawn = [] {
    std::random_device device;
    std::uniform_int_distribution<uint64_t> pick(uint64_t{1} << 32, kPrime - 1);
    return pick(device);
  }();
  return drawn;
}

uint64_t base_to(uint64_t power) {
  uint64_t result = 1;
  for (uint64_t b = base(); power > 0; power >>= 1, b = mul_mod(b, b))
    if (power & 1) result = mul_mod(result, b);
  return result;
}

// The prefix hash after `prefix` and then a line whose hash is `line_hash`.
uint64_t extend(uint64_t prefix, uint64_t line_hash) { return reduce(mul_mod(prefix, base()) + reduce(line_hash)); }

// The hash of the run between two prefix hashes `length` lines apart.
uint64_t run_hash(uint64_t prefix_before, uint64_t prefix_after, uint64_t length) {
  return sub_mod(prefix_after, mul_mod(prefix_before, base_to(length)));
}

// The snapshot's lines, their hashes and prefix hashes, in buffers every follower on this
// thread reuses: a poll of a 1,000-line window made vectors of a thousand entries and let them
// go. feed() never waits, so no other follower can use them meanwhile.
thread_local std::vector<std::string_view> window_lines;  // into the snapshot fed
thread_local std::vector<uint64_t> window_hashes;
thread_local std::vector<uint64_t> window_prefixes;  // [i]: the hash of the window's first i lines

// A window of more lines than this (a body of up to 64 MiB may be all newlines) does not leave
// its buffers' room behind on the thread: 32 bytes a line.
constexpr size_t kWindowLinesKept = size_t{1} << 16;

void give_back_window_room() {
  if (window_lines.capacity() <= kWindowLinesKept) return;
  window_lines = {};
  window_hashes = {};
  window_prefixes = {};
}

}  // namespace

LogFollower::Update LogFollower::feed(std::string_view snapshot, bool final) {
  window_lines.clear();
  window_hashes.clear();
  window_prefixes.assign(1, 0);
  size_t pos = 0;
  while (pos < snapshot.size()) {
    size_t nl = snapshot.find('\n', pos);
    if (nl == std::string_view::npos && !final) break;  // still being written
    size_t end = nl == std::string_view::npos ? snapshot.size() : nl;
    std::string_view line = snapshot.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    window_lines.push_back(line);
    window_hashes.push_back(std::hash<std::string_view>{}(line));
    window_prefixes.push_back(extend(window_prefixes.back(), window_hashes.back()));
    pos = end + 1;
  }

  // The largest k such that the last k lines seen are the first k lines of the window.
  size_t overlap = 0;
  for (size_t k = std::min(window_lines.size(), kept_); k > 0; --k) {
    if (overlaps(k, window_hashes, window_prefixes)) {
      overlap = k;
      break;
    }
  }

  Update update;
  update.gap = overlap == 0 && kept_ > 0 && !window_lines.empty();
  update.lines.assign(window_lines.begin() + static_cast<std::ptrdiff_t>(overlap), window_lines.end());
  for (size_t i = overlap; i < window_lines.size(); ++i) remember(window_hashes[i]);
  // Up to the memory or the longest window yet; a shorter window later does not shrink it (a
  // command that printed the whole log once may print it again).
  kept_ = std::max(kept_, std::min(kept_ + update.lines.size(), std::max(memory_, window_lines.size())));
  // The prefix hashes before the kept lines can no longer start a run that is checked.
  const uint64_t first_kept = static_cast<uint64_t>(seen_) - kept_;
  if (!marks_.empty() && first_mark_ < first_kept) {
    const size_t drop =
        std::min(marks_.size(), static_cast<size_t>((first_kept - first_mark_ + kStride - 1) / kStride));
    marks_.erase(marks_.begin(), marks_.begin() + static_cast<std::ptrdiff_t>(drop));
    first_mark_ += drop * kStride;
  }
  give_back_window_room();  // update.lines is a copy of the views
  return update;
}

bool LogFollower::overlaps(size_t k, const std::vector<uint64_t>& hashes, const std::vector<uint64_t>& prefixes) const {
  const uint64_t end = static_cast<uint64_t>(seen_);      // one past the last line seen
  for (size_t i = 1; i <= std::min(k, kExactLines); ++i)  // the last line first: most k fail on it
    if (hashes[k - i] != last_[(end - i) % kExactLines]) return false;
  // Beyond those lines, the run from the overlap's first kept prefix hash to the end, at once.
  const uint64_t start = end - k;  // the overlap's first line
  const uint64_t from = (start + kStride - 1) / kStride * kStride;
  if (from + kExactLines >= end) return true;  // nothing more to check
  const uint64_t length = end - from;
  assert(from >= first_mark_ && (from - first_mark_) / kStride < marks_.size());
  const uint64_t seen_run = run_hash(marks_[(from - first_mark_) / kStride], prefix_, length);
  const size_t in_window = static_cast<size_t>(from - start);
  return seen_run == run_hash(prefixes[in_window], prefixes[k], length);
}

void LogFollower::remember(uint64_t line_hash) {
  const uint64_t n = static_cast<uint64_t>(seen_);
  if (n % kStride == 0) {
    if (marks_.empty()) first_mark_ = n;
    marks_.push_back(prefix_);
  }
  last_[n % kExactLines] = line_hash;
  prefix_ = extend(prefix_, line_hash);
  ++seen_;
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
