#pragma once
// The live view read from a journal (engine/journal/run_view.h), and its cancel: a request the
// owning process notices, or a `flowrun cancel` started when nobody owns the run.
#include <memory>
#include <optional>
#include <string>

#include "engine/journal/cancel_requests.h"
#include "engine/serve/live_view.h"

namespace flowrun {

class Journal;

class JournalSource final : public ViewSource {
 public:
  // `flowrun_binary` is started as `flowrun_binary cancel RUN --state-dir STATE_DIR` for a run
  // nobody owns. Throws SqliteError when the journal cannot hold cancel requests.
  JournalSource(Journal& journal, std::string state_dir, std::string flowrun_binary);
  Json overview() override;
  Json run(const std::string& run_id) override;
  Json log(const std::string& run_id, const std::string& path) override;
  CancelAnswer cancel(const std::string& run_id) override;
  std::optional<std::string> metrics() override;

 private:
  Journal& journal_;
  std::string state_dir_;
  std::string flowrun_binary_;
  CancelRequests requests_;
};

// The Prometheus exposition of what the journal holds; none while this build has no metrics.
std::optional<std::string> journal_metrics(Journal& journal);

// This executable's path (/proc/self/exe resolved at the call).
std::string this_executable();

}  // namespace flowrun
