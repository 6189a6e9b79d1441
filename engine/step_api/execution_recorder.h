#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "engine/io/json.h"

namespace flowrun {

// What an earlier process of the same run recorded about one step path.
struct RecordedStep {
  std::string status;  // succeeded, failed, skipped, cancelled, running
  Json outputs = Json::object();
  std::string error;
  int attempts = 0;
  int64_t started_ms = 0;  // wall-clock milliseconds since the epoch of the first start
};

// How soon a record must be on disk. A side-effect-free step whose record a crash loses is simply
// run again, so its record may ride along in the transaction of the next record that cannot wait:
// a thousand `set` steps cost one commit, not a thousand. Order is kept, so whatever a durable
// record depends on is durable too.
enum class Durability { kNow, kWithNextWrite };

// Where the executor reports every state change, and where a resumed run learns what is already
// done. The journal implements it; the executor knows nothing of SQLite. Thread-safe.
class ExecutionRecorder {
 public:
  virtual ~ExecutionRecorder() = default;
  virtual std::optional<RecordedStep> recorded(const std::string& path) = 0;
  // True when anything was recorded at `path` or below it ("videos[2]" covers "videos[2].job").
  virtual bool started_under(const std::string& path) = 0;
  virtual void step_started(const std::string& path, int attempt) = 0;
  virtual void step_finished(const std::string& path, const std::string& status, int attempts, const Json& outputs,
                             const std::string& error_kind, const std::string& error, Durability durability) = 0;
  virtual void event(const std::string& path, const std::string& kind, const std::string& message) = 0;
  // A process group started by the step at `path` (its leader's pid and start time, /proc/PID/stat
  // field 22), durable before its program runs, so that a later `resume` or `cancel` can stop it
  // after a crash; process_ended clears it once the group is empty.
  virtual void process_started(const std::string& path, int64_t pgid, const std::string& start_ticks) {
    (void)path, (void)pgid, (void)start_ticks;
  }
  virtual void process_ended(const std::string& path, int64_t pgid) { (void)path, (void)pgid; }
};

}  // namespace flowrun
