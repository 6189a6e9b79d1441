#pragma once
#include <atomic>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/io/cancel_token.h"
#include "engine/io/clock.h"
#include "engine/io/json.h"
#include "engine/io/logging.h"
#include "engine/io/run_state.h"
#include "engine/model/workflow.h"
#include "engine/runtime/outcome.h"
#include "engine/step_api/execution_recorder.h"

namespace flowrun {

// The path of item `index` of the for_each at `path`: "videos[2]".
std::string for_each_item_path(const std::string& path, size_t index);
// The scope an item's steps see: the item under the step's `as` name, `loop`, its own `steps`,
// and a link to `scope` for everything else (link_outer_scope: `scope` must outlive the item's
// scope, unchanged).
Json for_each_item_scope(const Step& step, const Json& scope, const Json& items, size_t index);
Json for_each_item_scope(const Step& step, const Json&& scope, const Json& items, size_t index) = delete;

// Runs one execution of a for_each step: evaluates its items and concurrency, runs at most
// `concurrency` items at once (as fibers of one thread: waiting costs no thread), fills the step's outputs and judges
// the failed items against `tolerate`. Borrows everything it is given; one run().
class ForEachRunner {
 public:
  // Runs one item's body and then its finally steps in `item_scope`, the item's own copy.
  using RunItem = std::function<Outcome(Json& item_scope, CancelToken& cancel, const std::string& item_path)>;
  // What a dry run needs: its items may come from steps it did not run.
  struct DryRun {
    bool enabled = false;
    const std::function<void(const std::string&)>* print = nullptr;  // where the plan goes
  };

  // `recorder` (borrowed, may be null) hears of each item: its row at the item's path, the
  // item_succeeded/item_failed events, and live patches (the item count; each item's status).
  // `clock` times the items' waits (the executor's, virtual in tests).
  ForEachRunner(const Step& step, const std::string& path, const StepLog& log, Clock& clock, DryRun dry_run,
                RunItem run_item, ExecutionRecorder* recorder = nullptr);

  // Runs the items, each in a scope of its own linked to `scope` (for_each_item_scope), which
  // must stay unchanged until run returns; fills `outputs` (items, counts,
  // failed_items, not_started, partial) even when the run was cancelled.
  Outcome run(const Json& scope, CancelToken& cancel, Json& outputs);

 private:
  // The item list (the step's own, or its expression's value); its error message on failure.
  std::optional<std::string> evaluate_items(const Json& scope);
  // How many items run at once; its error message on failure.
  std::optional<std::string> evaluate_workers(const Json& scope);
  void run_items(const Json& scope, CancelToken& cancel);
  void run_item(size_t index, const Json& scope, CancelToken& cancel);
  // run_item's parts, out of line (see run_item): the item's scope; its start reported to the
  // journal unless an earlier process finished it (returns whether it did); its result kept.
  [[gnu::noinline]] Json item_scope_of(size_t index, const Json& scope);
  [[gnu::noinline]] bool report_item_start(size_t index, const std::string& item_path);
  [[gnu::noinline]] void item_ended(size_t index, const std::string& item_path, bool reported, const Outcome& o,
                                    Json& item_scope);
  // The item's row, event and live status once it ended (not for an item reused on resume).
  void report_item_end(size_t i, const std::string& item_path, const Outcome& o, const Json& steps_out);
  // The outputs, the items' results moved into them (once: a copy of 10,000 results was a run's
  // peak of memory).
  Json summarize();
  Outcome judge(const CancelToken& cancel) const;

  const Step& step_;
  const std::string path_;  // a copy: the runner must not outlive a caller's temporary
  const StepLog& log_;
  Clock& clock_;
  DryRun dry_run_;
  RunItem run_item_;
  ExecutionRecorder* recorder_;

  Json items_;
  size_t count_ = 0;
  size_t allowed_failures_ = 0;
  size_t workers_ = 1;
  std::set<std::string> body_ids_;  // the step names an item's outputs report

  // Written by the item fibers: each index by the one that took it.
  std::vector<Json> results_;
  std::vector<std::optional<StepState>> states_;
  std::atomic<size_t> next_{0};
  std::atomic<size_t> failures_{0};
  std::atomic<size_t> finally_failures_{0};  // never tolerated
  std::atomic<bool> any_partial_{false};
  std::atomic<bool> stop_launching_{false};
  std::mutex scope_mutex_;  // copying the caller's scope
};

}  // namespace flowrun
