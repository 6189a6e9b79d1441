#pragma once
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace flowrun {

// Turns successive snapshots of the end of a log into the lines not seen before. The sources
// that only show an end are read this way (an instance: Vast.ai returns only the last N lines,
// a local instance's log is read from its tail; a command prints what it prints); a file and a
// URL are read by offset instead (FileLogSource, UrlLogSource). The new part of a snapshot is what follows
// the longest overlap between the snapshot's first lines and the last lines already seen, so a
// line is never printed twice; a snapshot that does not overlap at all means the log moved on
// by more than a window between two polls (lines were missed: `gap`) or was truncated or
// rotated, and all of it counts as new.
//
// Seen lines are not kept, nor a hash of each: ten thousand monitors of 600-line windows held
// 46 MiB of 8-byte line hashes. An overlap is checked line by line over its last kExactLines
// lines (a hash each, in a ring), and before them as one run, by a polynomial hash of the lines
// seen kept at every kStride-th line: about half a byte a line. An overlap's first lines, fewer
// than kStride, come before its first kept hash and go unchecked. So an overlap is taken wrongly
// only when, after fewer than kStride other lines, the snapshot has a run of at least
// kExactLines lines identical to the last ones seen, and those few lines are not the ones seen
// before the run:
//   - a log that repeats a run of lines: the lines taken as seen are those few and copies of
//     the run (comparing whole lines, a log that repeats itself throughout the window was
//     already matched at its longest overlap, hiding the copies);
//   - a window that reaches back before the previous one's start, right after a gap: the few
//     lines are among those the gap missed, and stay missed (comparing whole lines found no
//     overlap and handed the previous window on twice). The sources' windows, a log's last N
//     lines or bytes, only move on.
// Two different runs agree with a chance of about their length / 2^61: the polynomial's base is
// drawn at random in each process.
class LogFollower {
 public:
  // `memory`: how many of the last lines seen an overlap may span (their prefix hashes are
  // kept); a longer window raises it to its length for good.
  explicit LogFollower(size_t memory = 1000) : memory_(memory) {}
  // The memory for a source whose windows are at most `tail` lines: more seen lines could never
  // take part in an overlap (and a longer window keeps its own length anyway).
  static size_t memory_for_tail(int tail) { return static_cast<size_t>(std::max(tail, 1)); }

  struct Update {
    std::vector<std::string_view> lines;  // new complete lines, oldest first, into the snapshot fed
    bool gap = false;                     // nothing overlapped what was seen before
  };

  // `snapshot`: the text the source returned now. A trailing line without a newline is held
  // back until it is complete, unless `final` (the source will not grow any more). The lines
  // returned point into `snapshot`: it must outlive them.
  Update feed(std::string_view snapshot, bool final = false);

  long long lines_seen() const { return seen_; }

 private:
  static constexpr size_t kExactLines = 16;  // the last lines seen, checked line by line
  static constexpr size_t kStride = 16;      // lines between two kept prefix hashes

  // Whether the last k lines seen are the first k of the window whose line hashes and prefix
  // hashes (prefixes[i]: its first i lines') are given.
  bool overlaps(size_t k, const std::vector<uint64_t>& hashes, const std::vector<uint64_t>& prefixes) const;
  void remember(uint64_t line_hash);

  // Lines are numbered from the first one seen; lines_seen() is the next one's number.
  std::array<uint64_t, kExactLines> last_{};  // a ring: line n's hash at n % kExactLines
  std::vector<uint64_t> marks_;               // the prefix hash before line first_mark_ + i * kStride
  uint64_t first_mark_ = 0;                   // a multiple of kStride
  uint64_t prefix_ = 0;                       // the prefix hash of all lines seen
  size_t kept_ = 0;                           // the last lines seen an overlap may span
  size_t memory_;
  long long seen_ = 0;
};

// The last `max_lines` lines of a file (reading at most its last 8 MiB); "" when it is missing.
std::string read_file_tail(const std::filesystem::path& path, int max_lines);

}  // namespace flowrun
