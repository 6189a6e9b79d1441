#include "engine/journal/cancel_requests.h"

namespace flowrun {

const char* const CancelRequests::kSchema = R"SQL(
CREATE TABLE IF NOT EXISTS cancel_requests (
  run_id TEXT PRIMARY KEY, requested_ms INTEGER NOT NULL, source TEXT NOT NULL);
)SQL";

CancelRequests::CancelRequests(const std::string& journal_path) : db_(journal_path, false) {
  MutexLock lock(mutex_);
  db_.exec(kSchema);
}

void CancelRequests::request(const std::string& run_id, int64_t now_ms, const std::string& source) {
  MutexLock lock(mutex_);
  db_.query("INSERT OR IGNORE INTO cancel_requests (run_id, requested_ms, source) VALUES (?, ?, ?)",
            {run_id, now_ms, source.substr(0, 200)});
}

bool CancelRequests::requested(const std::string& run_id) {
  MutexLock lock(mutex_);
  return !db_.query("SELECT 1 FROM cancel_requests WHERE run_id = ?", {run_id}).empty();
}

CancelRequestWatcher::CancelRequestWatcher(const std::string& journal_path, std::string run_id, CancelToken& cancel,
                                           std::atomic<bool>& cleanup, std::chrono::milliseconds interval)
    : run_id_(std::move(run_id)) {
  try {
    requests_ = std::make_unique<CancelRequests>(journal_path);
  } catch (const std::exception&) {
    return;  // nobody can have asked through a journal that cannot be opened
  }
  thread_ = std::thread([this, &cancel, &cleanup, interval] {
    while (!stop_.wait_for(interval)) {
      bool asked = false;
      try {
        asked = requests_->requested(run_id_);
      } catch (const std::exception&) {
      }
      if (asked) {
        cleanup.store(true);
        cancel.cancel("cancel requested from the live view");
        return;
      }
    }
  });
}

CancelRequestWatcher::~CancelRequestWatcher() {
  stop_.cancel();
  if (thread_.joinable()) thread_.join();
}

}  // namespace flowrun
