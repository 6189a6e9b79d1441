#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "engine/io/json.h"
#include "engine/io/mutex.h"
#include "engine/io/sqlite_db.h"
#include "engine/step_api/execution_recorder.h"

namespace flowrun {

class Redactor;

// The journal cannot be used (unreadable, corrupted, or from a newer flowrun). The message says
// what to do; the file is never overwritten. Only the CLI catches it, and prints it.
class JournalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct RunRow {
  std::string id;
  std::string workflow_path;  // absolute
  std::string workflow_name;
  std::string content_hash;
  Json inputs = Json::object();
  std::string status;  // a RunState's name (engine/io/run_state.h)
  std::string error;
  int64_t started_ms = 0;
  int64_t updated_ms = 0;
  int64_t owner_pid = 0;  // 0: nobody holds the run
  std::string owner_host;
  int64_t lease_until_ms = 0;
};

// The transient state of one step path for live views (ExecutionRecorder::live), merged.
struct LiveRow {
  std::string path;
  int64_t updated_ms = 0;
  Json state = Json::object();
};

// A process group a run started and has not seen end (see ExecutionRecorder::process_started).
struct ProcessGroupRow {
  std::string path;
  int64_t pgid = 0;
  std::string start_ticks;
};

// Durable record of runs, step executions and events in SQLite (WAL) at
// STATE_DIR/journal.db. Written at every state change; the records of side-effect-free steps wait
// for the next write that cannot (see Durability) and every method commits them before it acts,
// so a reader in this process never misses one. A run's records that cannot wait share commits
// with those that come at the same time (JournalRecorder::commit_together). Thread-safe (one
// connection, a mutex).
class Journal {
 public:
  // Opens or creates the journal. Throws JournalError when it cannot be used.
  static std::unique_ptr<Journal> open(const std::filesystem::path& state_dir);

  void create_run(const RunRow& run);
  std::optional<RunRow> run(const std::string& id);
  std::vector<RunRow> recent_runs(int limit);
  void set_run_status(const std::string& id, const std::string& status, const std::string& error = {});
  // Deletes the finished runs of a workflow beyond the newest `keep` (a monitor ticking every
  // few minutes for months must not grow the journal without end). Returns how many went.
  int64_t prune_finished_runs(const std::string& workflow_path, int keep);
  // Every step execution of a run, in the order they started.
  std::vector<Json> steps(const std::string& run_id);
  std::vector<Json> events(const std::string& run_id);
  // The events of `kinds` of the newest `limit` runs (each with its run_id), oldest first.
  std::vector<Json> events_of_recent_runs(int limit, const std::vector<std::string>& kinds);
  // What the live views show of a running step: the merged live states of a run, by path. They
  // are written together about once a second, or with the next record committed.
  std::vector<LiveRow> live_states(const std::string& run_id);

  // Whether try_acquire took the run, and if not who holds it ("pid N on HOST").
  struct Claim {
    bool taken = false;
    std::string holder;
  };
  // Takes the run for this process unless another live process holds it. A holder whose lease
  // expired, or that runs on this host and no longer exists, is taken over.
  Claim try_acquire(const std::string& run_id, int64_t pid, const std::string& host, int64_t lease_ms);
  void renew(const std::string& run_id, int64_t pid, int64_t lease_ms);
  void release(const std::string& run_id, int64_t pid);

  // Process groups of a run, recorded (at once, durably) before their programs start and
  // cleared when they are gone; what is left after a crash may still run.
  void record_process_group(const std::string& run_id, const std::string& path, int64_t pgid,
                            const std::string& start_ticks);
  void clear_process_group(const std::string& run_id, int64_t pgid);
  std::vector<ProcessGroupRow> process_groups(const std::string& run_id);

  // A recorder for one run; secrets are redacted from everything it stores.
  std::unique_ptr<ExecutionRecorder> recorder(const std::string& run_id, const Redactor& redactor);

  const std::string& path() const { return path_; }
  // Transactions this Journal has committed so far; for tests and benchmarks.
  uint64_t commits();

  // Commits the records still waiting (best effort).
  ~Journal();

 private:
  friend class JournalRecorder;
  // One row of `steps`, whole: it is written by upsert.
  struct StepRow {
    std::string run_id;
    std::string path;
    int64_t seq = 0;
    std::string status;
    int attempts = 0;
    // JSON, redacted; shared with the recorder's copy of the row (a for_each's outputs at
    // 10,000 items are MiBs of text).
    std::shared_ptr<const std::string> outputs;
    std::string error_kind;
    std::string error;  // redacted
    int64_t started_ms = 0;
    int64_t finished_ms = 0;
  };
  // One row of `events`, waiting for its commit like a step row.
  struct EventRow {
    std::string run_id;
    int64_t at_ms = 0;
    std::string path;
    std::string kind;
    std::string message;  // redacted
    std::string data;     // JSON, redacted
  };

  explicit Journal(SqliteDb db) : path_(db.path()), db_(std::move(db)) {}
  // The live state of `path` as last merged: the one waiting to be written, else the row; {}.
  Json live_state_locked(const std::string& run_id, const std::string& path) REQUIRES(mutex_);
  // One transaction: the waiting step rows and events, in order, then `also` (may be empty),
  // then the live states and the runs' last-change times. The rows wait on if it fails.
  void commit_waiting_locked(const std::function<void()>& also = {}) REQUIRES(mutex_);

  const std::string path_;  // the database file's, fixed at open: read without the mutex
  Mutex mutex_;
  SqliteDb db_ GUARDED_BY(mutex_);
  std::vector<StepRow> waiting_ GUARDED_BY(mutex_);
  std::vector<EventRow> events_waiting_ GUARDED_BY(mutex_);
  // Live states waiting for a commit: (run id, path) -> (updated_ms, state JSON); the newest wins.
  std::map<std::pair<std::string, std::string>, std::pair<int64_t, std::string>> live_waiting_ GUARDED_BY(mutex_);
  size_t live_waiting_bytes_ GUARDED_BY(mutex_) = 0;  // of the states' JSON texts
  int64_t live_written_at_ GUARDED_BY(mutex_) = 0;    // steady_ms() when a commit last wrote live states
  uint64_t commits_ GUARDED_BY(mutex_) = 0;
};

// Holds a run for this process while alive: acquires in the constructor (throws
// JournalError naming the holder when refused), renews the lease every few seconds on a
// thread of its own, and releases in the destructor.
class RunLease {
 public:
  RunLease(Journal& journal, std::string run_id);
  ~RunLease();
  RunLease(const RunLease&) = delete;
  RunLease& operator=(const RunLease&) = delete;

  static constexpr int64_t kLeaseMs = 30'000;

 private:
  Journal& journal_;
  std::string run_id_;
  int64_t pid_;
  Mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ GUARDED_BY(mutex_) = false;
  std::thread heartbeat_;
};

int64_t wall_clock_ms();
std::string this_host();
// A stable 64-bit FNV-1a hash of a text, as 16 hex digits (std::hash differs between builds).
std::string content_hash(const std::string& text);

}  // namespace flowrun
