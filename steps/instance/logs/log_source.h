#pragma once
// Where wait-for-marker reads a log from: one implementation per source (a file, a URL, a
// command's output, an instance's log), each handing on only the lines it has not handed on
// before. The step picks one from its parameters.
#include <functional>
#include <string>
#include <string_view>

namespace flowrun {

class StepContext;
class StepLog;
class LogFollower;

// Takes a line; false stops the read.
using LineSink = std::function<bool(std::string_view)>;
// Whether a run of lines may matter (LineSplitter::feed_filtered); empty: every line does.
using LinePrefilter = std::function<bool(std::string_view)>;

class LogSource {
 public:
  virtual ~LogSource() = default;

  // Hands the lines that arrived since the last read to `take`, oldest first, until it returns
  // false. A source that reads bytes (a file, a URL) skips the runs `may_matter` rules out; a
  // source that reads snapshots ignores it. Returns why the log will not reach the marker any
  // more ("" while it may): only an instance's log ends this way. Throws StepError.
  virtual std::string read(StepContext& ctx, const LineSink& take, const LinePrefilter& may_matter) = 0;

  // Lines counted by a snapshot source (outputs.lines); a file or a URL does not count them (0).
  virtual long long lines_seen() const { return 0; }
};

// Hands the new lines of `snapshot` (the end of a log, as a command or a provider returns it) to
// `take`, warning when the log moved on by more than a window (`tail` lines) between two looks.
void read_snapshot(LogFollower& follower, std::string_view snapshot, bool final, int tail, const StepLog& log,
                   const LineSink& take);

}  // namespace flowrun
