#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/io/json.h"
#include "engine/io/mutex.h"
#include "engine/io/sqlite_db.h"

namespace flowrun {

// One notification as the outbox keeps it (the table `outbox` of the journal's database).
struct OutboxRow {
  int64_t id = 0;
  std::string delivery_key;  // RUN/PATH/EVENT[#n]/CHANNEL: one row per event, run and channel
  std::string run_id, channel, event, path;
  Json payload;                    // redacted
  Json target;                     // the resolved channel settings: secrets, never shown
  std::string status = "pending";  // pending, sent, failed, suppressed, digested
  int attempts = 0;
  int64_t next_ms = 0;
  std::string last_error;
  int64_t created_ms = 0, sent_ms = 0;
};

// The notifications of every run on a state dir, on its own connection to the journal's file so
// that a notification is on disk before the run goes on, and any later process can deliver it.
// Thread-safe.
class Outbox {
 public:
  // Opens (creating the tables when missing) the database at `path`. Throws SqliteError.
  explicit Outbox(const std::string& path);

  // Inserts `row` unless its delivery key is there already; true when it was new.
  bool enqueue(const OutboxRow& row);
  // How many rows of `channel` and `event`, of any run, were sent or are pending since `since_ms`
  // (for `at_most`).
  int recent(const std::string& channel, const std::string& event, int64_t since_ms);
  // Rows of `run_id` for `path`, `event` and `channel` (to number an event that happens again).
  int count_of(const std::string& run_id, const std::string& path, const std::string& event,
               const std::string& channel);
  // The due time of the open digest window of `run_id` and `channel` (a pending, untried item
  // event due after `now_ms`), or 0 when none is open.
  int64_t open_window(const std::string& run_id, const std::string& channel, int64_t now_ms);
  // Pending rows whose next_ms is at most `now_ms`, oldest first.
  std::vector<OutboxRow> due(int64_t now_ms, int limit = 50);
  // Pending item events of `run_id` for `channel` created up to `until_ms`, oldest first.
  std::vector<OutboxRow> pending_items(const std::string& run_id, const std::string& channel, int64_t until_ms);
  // Takes a due row for one delivery attempt by moving its next_ms to `lease_ms` (another process
  // then skips it until the lease ends); false when someone else took it or it is no longer pending.
  bool claim(int64_t id, int64_t expected_next_ms, int64_t lease_ms);
  void mark(int64_t id, const std::string& status, int64_t sent_ms);
  void retry_later(int64_t id, int attempts, int64_t next_ms, const std::string& error);
  void give_up(int64_t id, int attempts, const std::string& error);
  // Makes the pending rows of `run_id` due by `now_ms` (a digest window is cut short by the run's end).
  void due_by(const std::string& run_id, int64_t now_ms);
  // Makes every pending row due by `now_ms` (`flowrun notify deliver`: try now, whatever the backoff).
  void all_due_by(int64_t now_ms);
  // Pending rows, of one run or (empty `run_id`) of all.
  int pending(const std::string& run_id = "");
  // Deletes the finished rows (and the stored targets) of runs the journal pruned, so that a
  // monitor ticking for months keeps a bounded outbox; pending rows stay until delivered.
  // Returns how many rows went.
  int64_t forget_pruned_runs();
  // The newest rows, for `flowrun notify list`.
  std::vector<OutboxRow> list(int limit);

  // The resolved target a run first used for a channel: stored on its first start, so a resumed
  // run (whose recorded inputs are redacted) reaches the same receiver. Returns the stored one.
  Json remember_target(const std::string& run_id, const std::string& channel, const Json& target);
  // Every target stored for `run_id`.
  std::vector<Json> targets_of(const std::string& run_id);

 private:
  Mutex mutex_;
  SqliteDb db_ GUARDED_BY(mutex_);
};

}  // namespace flowrun
