#pragma once
#include <atomic>
#include <memory>
#include <string>

#include "engine/io/logging.h"
#include "engine/io/mutex.h"
#include "engine/step_api/execution_recorder.h"

namespace flowrun {

class Journal;

// Wraps the journal's recorder so that a write that fails (a full disk, a read-only journal) does
// not throw through the executor: the first failure is logged once with what to do, later writes
// are skipped, and the run goes on to its end and its finally steps. What was recorded before
// stays, so the run can be resumed once the journal can be written again. Thread-safe.
class FailsafeRecorder final : public ExecutionRecorder {
 public:
  FailsafeRecorder(std::unique_ptr<ExecutionRecorder> inner, std::string journal_path, std::string run_id, StepLog log);

  bool broken() const { return broken_.load(); }
  // The first write error, "" while none.
  std::string failure() const;

  std::optional<RecordedStep> recorded(const std::string& path) override { return inner_->recorded(path); }
  bool started_under(const std::string& path) override { return inner_->started_under(path); }
  void step_started(const std::string& path, int attempt) override;
  void step_finished(const std::string& path, const std::string& status, int attempts, const Json& outputs,
                     const std::string& error_kind, const std::string& error, Durability durability) override;
  void event(const std::string& path, const std::string& kind, const std::string& message, const Json& data) override;
  void live(const std::string& path, const Json& patch) override;
  void process_started(const std::string& path, int64_t pgid, const std::string& start_ticks) override;
  void process_ended(const std::string& path, int64_t pgid) override;

 private:
  template <class Write>
  void guarded(Write&& write);

  std::unique_ptr<ExecutionRecorder> inner_;
  std::string journal_path_;
  std::string run_id_;
  StepLog log_;
  std::atomic<bool> broken_{false};
  mutable Mutex mutex_;
  std::string failure_ GUARDED_BY(mutex_);
};

// What to do when the journal at `journal_path` cannot be written: "cannot write the journal
// FILE: ERROR; free space on DIR (or make the journal writable) and run `flowrun resume RUN`".
std::string journal_write_hint(const std::string& journal_path, const std::string& run_id, const std::string& error);

// Records the run's end (`error` already redacted) unless `recorder` broke; when it broke or
// this write fails, prints the hint to stderr and returns false (the run stays resumable).
bool record_run_end(Journal& journal, const std::string& run_id, const std::string& status, const std::string& error,
                    const FailsafeRecorder* recorder);

}  // namespace flowrun
