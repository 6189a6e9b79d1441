#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "engine/io/duration.h"
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
  // Something the person who is not watching may want to hear of, journaled with its details
  // (`data`, an object; null for none). Kinds: retry, failed, timeout (attempts); item_succeeded,
  // item_failed (for_each; data: item, outputs, error); stalled, recovered, restart_loop
  // (stall-check); instance_lost, instance_recovered (wait-for-marker); instance_started,
  // instance_destroyed (provision, destroy; data: instance, price_per_hour). Notifications are
  // made from these (engine/notify).
  virtual void event(const std::string& path, const std::string& kind, const std::string& message,
                     const Json& data) = 0;
  // The latest transient state of a waiting step, for live views: merged into what was reported
  // before (merge_live_patch, live_patch.h: progress, progress_text, last_line, log_tail,
  // instance, ...). Not durable, and may be coalesced; bounded by the receiver.
  virtual void live(const std::string& path, const Json& patch) { (void)path, (void)patch; }
  // One poll of a waiting step ended, `ok` or not, after `latency` (metrics; not journaled).
  virtual void polled(const std::string& path, Duration latency, bool ok) { (void)path, (void)latency, (void)ok; }
  // A process group started by the step at `path` (its leader's pid and start time, /proc/PID/stat
  // field 22), durable before its program runs, so that a later `resume` or `cancel` can stop it
  // after a crash; process_ended clears it once the group is empty.
  virtual void process_started(const std::string& path, int64_t pgid, const std::string& start_ticks) {
    (void)path, (void)pgid, (void)start_ticks;
  }
  virtual void process_ended(const std::string& path, int64_t pgid) { (void)path, (void)pgid; }
};

// Passes everything to `inner`; observers (metrics, notifications, the terminal's live table)
// derive from it and override only what they watch, calling the base to pass it on.
class ForwardingRecorder : public ExecutionRecorder {
 public:
  explicit ForwardingRecorder(std::unique_ptr<ExecutionRecorder> inner) : inner_(std::move(inner)) {}
  std::optional<RecordedStep> recorded(const std::string& path) override { return inner_->recorded(path); }
  bool started_under(const std::string& path) override { return inner_->started_under(path); }
  void step_started(const std::string& path, int attempt) override { inner_->step_started(path, attempt); }
  void step_finished(const std::string& path, const std::string& status, int attempts, const Json& outputs,
                     const std::string& error_kind, const std::string& error, Durability durability) override {
    inner_->step_finished(path, status, attempts, outputs, error_kind, error, durability);
  }
  void event(const std::string& path, const std::string& kind, const std::string& message, const Json& data) override {
    inner_->event(path, kind, message, data);
  }
  void live(const std::string& path, const Json& patch) override { inner_->live(path, patch); }
  void polled(const std::string& path, Duration latency, bool ok) override { inner_->polled(path, latency, ok); }
  void process_started(const std::string& path, int64_t pgid, const std::string& start_ticks) override {
    inner_->process_started(path, pgid, start_ticks);
  }
  void process_ended(const std::string& path, int64_t pgid) override { inner_->process_ended(path, pgid); }

 protected:
  ExecutionRecorder& inner() { return *inner_; }

 private:
  std::unique_ptr<ExecutionRecorder> inner_;
};

}  // namespace flowrun
