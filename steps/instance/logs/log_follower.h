#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
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
// Seen lines are remembered by a 64-bit hash, not their text: a thousand monitors of 1,000-line
// windows kept 5,000 lines each (~700 KiB a monitor); 8 bytes a line now. Two different lines
// taken for the same one (a chance of 2^-64 a comparison) would hide the lines they overlap.
class LogFollower {
 public:
  // `memory`: how many seen lines are kept for overlap matching; the latest window is kept
  // whatever it says.
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
  std::deque<uint64_t> recent_;  // the hashes of the last lines seen, oldest first
  size_t memory_;
  long long seen_ = 0;
};

// The last `max_lines` lines of a file (reading at most its last 8 MiB); "" when it is missing.
std::string read_file_tail(const std::filesystem::path& path, int max_lines);

}  // namespace flowrun
