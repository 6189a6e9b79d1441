#include "engine/journal/failsafe_recorder.h"

#include <filesystem>
#include <iostream>

#include "engine/journal/journal.h"

namespace flowrun {

FailsafeRecorder::FailsafeRecorder(std::unique_ptr<ExecutionRecorder> inner, std::string journal_path,
                                   std::string run_id, StepLog log)
    : inner_(std::move(inner)),
      journal_path_(std::move(journal_path)),
      run_id_(std::move(run_id)),
      log_(std::move(log)) {}

std::string FailsafeRecorder::failure() const {
  MutexLock lock(mutex_);
  return failure_;
}

template <class Write>
void FailsafeRecorder::guarded(Write&& write) {
  if (broken_.load()) return;  // a record after a lost one would describe a run the journal does not hold
  try {
    write();
  } catch (const std::exception& e) {
    {
      MutexLock lock(mutex_);
      if (!failure_.empty()) return;
      failure_ = e.what();
    }
    broken_.store(true);
    log_.error(journal_write_hint(journal_path_, run_id_, e.what()) +
               " The run goes on unrecorded; its finally steps still run.");
  }
}

void FailsafeRecorder::step_started(const std::string& path, int attempt) {
  guarded([&] { inner_->step_started(path, attempt); });
}

void FailsafeRecorder::step_finished(const std::string& path, const std::string& status, int attempts,
                                     const Json& outputs, const std::string& error_kind, const std::string& error,
                                     Durability durability) {
  guarded([&] { inner_->step_finished(path, status, attempts, outputs, error_kind, error, durability); });
}

void FailsafeRecorder::event(const std::string& path, const std::string& kind, const std::string& message,
                             const Json& data) {
  guarded([&] { inner_->event(path, kind, message, data); });
}

void FailsafeRecorder::live(const std::string& path, const Json& patch) {
  guarded([&] { inner_->live(path, patch); });
}

void FailsafeRecorder::process_started(const std::string& path, int64_t pgid, const std::string& start_ticks) {
  guarded([&] { inner_->process_started(path, pgid, start_ticks); });
}

void FailsafeRecorder::process_ended(const std::string& path, int64_t pgid) {
  guarded([&] { inner_->process_ended(path, pgid); });
}

std::string journal_write_hint(const std::string& journal_path, const std::string& run_id, const std::string& error) {
  std::string dir = std::filesystem::path(journal_path).parent_path().string();
  return "cannot write the journal " + journal_path + ": " + error + ". Free space on " + (dir.empty() ? "." : dir) +
         " (or make the journal writable) and run `flowrun resume " + run_id +
         "` to carry on from the last step recorded.";
}

bool record_run_end(Journal& journal, const std::string& run_id, const std::string& status, const std::string& error,
                    const FailsafeRecorder* recorder) {
  std::string failure = recorder ? recorder->failure() : "";
  if (failure.empty()) {
    try {
      journal.set_run_status(run_id, status, error);
      return true;
    } catch (const std::exception& e) {
      failure = e.what();
    }
  }
  std::cerr << "flowrun: " << journal_write_hint(journal.path(), run_id, failure) << "\n";
  return false;
}

}  // namespace flowrun
