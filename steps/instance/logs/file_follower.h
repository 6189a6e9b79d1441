#pragma once
// Follows a local log file the way `tail -F` does: by byte offset, so each poll reads only what
// was appended since the last one (a 1 GiB log is read once, not re-read per poll), with the
// file's identity checked so a rotated or truncated log is read again from its start.
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string_view>

#include "engine/io/line_splitter.h"

namespace flowrun {

class FileFollower {
 public:
  struct Result {
    uint64_t bytes_read = 0;
    bool restarted = false;  // rotated (another file now) or truncated: read again from the start
    bool missing = false;    // no file (yet)
  };

  // Hands every complete line appended since the last call to `on_line`, reading in chunks, up
  // to the end of the file or until `on_line` returns false or `keep_going` says stop. A last
  // line without a newline waits for its end. With `may_matter`, lines are read as
  // LineSplitter::feed_filtered reads them: whole runs of lines it rules out are skipped.
  Result follow(
      const std::filesystem::path& path, const std::function<bool(std::string_view)>& on_line,
      const std::function<bool()>& keep_going = [] { return true; },
      const std::function<bool(std::string_view)>& may_matter = {});

  uint64_t offset() const { return offset_; }

 private:
  uint64_t offset_ = 0;
  dev_t device_ = 0;
  ino_t inode_ = 0;
  bool opened_before_ = false;
  LineSplitter splitter_;
};

}  // namespace flowrun
