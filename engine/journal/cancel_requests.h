#pragma once
// Cancel requests from outside the process that owns a run (the served view's cancel button):
// a table in the journal's database, written by the requester and watched by the owner.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "engine/io/cancel_token.h"
#include "engine/io/mutex.h"
#include "engine/io/sqlite_db.h"

namespace flowrun {

// The cancel_requests table on a connection of its own to the journal's file (the journal's
// schema is not touched). Thread-safe. Throws SqliteError when the database cannot be used.
class CancelRequests {
 public:
  explicit CancelRequests(const std::string& journal_path);
  // Records that `run_id` should be cancelled; a second request keeps the first time.
  void request(const std::string& run_id, int64_t now_ms, const std::string& source);
  bool requested(const std::string& run_id);

  static const char* const kSchema;

 private:
  Mutex mutex_;
  SqliteDb db_ GUARDED_BY(mutex_);
};

// While alive, checks every `interval` whether the run was asked to be cancelled; the first time
// it was, sets `cleanup` (so the cancel runs the finally steps instead of detaching) and then
// cancels `cancel`. A journal it cannot read is checked again at the next interval.
class CancelRequestWatcher {
 public:
  CancelRequestWatcher(const std::string& journal_path, std::string run_id, CancelToken& cancel,
                       std::atomic<bool>& cleanup, std::chrono::milliseconds interval = std::chrono::seconds(1));
  ~CancelRequestWatcher();
  CancelRequestWatcher(const CancelRequestWatcher&) = delete;
  CancelRequestWatcher& operator=(const CancelRequestWatcher&) = delete;

 private:
  std::unique_ptr<CancelRequests> requests_;
  std::string run_id_;
  CancelToken stop_;
  std::thread thread_;
};

}  // namespace flowrun
