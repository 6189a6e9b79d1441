#include "engine/runtime/for_each_runner.h"

#include <algorithm>
#include <cmath>

#include "engine/io/fiber_scheduler.h"
#include "engine/io/free_heap.h"
#include "engine/io/json_parse.h"
#include "engine/runtime/dry_run.h"
#include "engine/sandbox/expression.h"

namespace flowrun {
namespace {

// The most items of one for_each in flight at once (see evaluate_workers).
constexpr size_t kMostInFlight = 16384;

// From this many items, the heap's free pages go back to the kernel once they have run
// (give_back_free_heap): at 10,000 url monitors, 89.6 -> 80.5 MiB before the results are written.
constexpr size_t kGiveBackHeapAfter = 1000;

// The status of an item that never started (the for_each stopped launching): not a StepState,
// since no step of it ran.
constexpr const char* kNotStarted = "not_started";

// How many items may fail before the for_each fails: `tolerate`'s count or percent, the larger.
size_t allowed_failures(const Step& step, size_t count) {
  if (!step.tolerate) return 0;
  return std::max<size_t>(step.tolerate->count,
                          static_cast<size_t>(std::floor(step.tolerate->percent / 100.0 * count)));
}

// An item as live views show it: its text, at most 200 bytes (cut at a character boundary).
std::string short_item(const Json& item) {
  std::string text = interpolation_text(item);
  if (text.size() <= 200) return text;
  size_t cut = 200;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut);
}

// An item all of whose steps an earlier process of the run finished: a resume reuses them, and
// it was reported then.
bool finished_before(ExecutionRecorder* recorder, const std::string& item_path) {
  if (!recorder) return false;
  auto r = recorder->recorded(item_path);
  return r && (r->status == to_string(StepState::kSucceeded) || r->status == to_string(StepState::kPartial));
}

}  // namespace

std::string for_each_item_path(const std::string& path, size_t index) {
  return path + "[" + std::to_string(index) + "]";
}

Json for_each_item_scope(const Step& step, const Json& scope, const Json& items, size_t index) {
  // Only the item's own entries: the rest is reached through the link. A copy of the earlier
  // steps' outputs in each of 1,000 items in flight took 1.1 GiB after a step that listed 10,000
  // items; a copy of inputs, env, run and secrets was 1.3 KiB of each waiting monitor's ~15.
  Json item_scope = {{"steps", Json::object()}};
  link_outer_scope(item_scope, scope);
  item_scope[step.as] = items[index];
  item_scope["loop"] = {{"index", index}, {"count", items.size()}};
  return item_scope;
}

ForEachRunner::ForEachRunner(const Step& step, const std::string& path, const StepLog& log, Clock& clock,
                             DryRun dry_run, RunItem run_item, ExecutionRecorder* recorder)
    : step_(step),
      path_(path),
      log_(log),
      clock_(clock),
      dry_run_(dry_run),
      run_item_(std::move(run_item)),
      recorder_(recorder) {}

Outcome ForEachRunner::run(const Json& scope, CancelToken& cancel, Json& outputs) {
  auto fail = [this](const std::string& msg) {
    log_.error(msg);
    return Outcome::failed(msg);
  };
  if (auto error = evaluate_items(scope)) return fail(*error);
  count_ = items_.size();
  collect_step_names(step_.steps, body_ids_);
  collect_step_names(step_.finally, body_ids_);
  allowed_failures_ = allowed_failures(step_, count_);
  if (auto error = evaluate_workers(scope)) return fail(*error);
  log_.info("for_each over " + std::to_string(count_) + " items, " + std::to_string(workers_) + " at a time");
  if (recorder_) recorder_->live(path_, {{"items", count_}});

  run_items(scope, cancel);
  if (count_ >= kGiveBackHeapAfter) give_back_free_heap();
  outputs = summarize();
  return judge(cancel);
}

std::optional<std::string> ForEachRunner::evaluate_items(const Json& scope) {
  if (step_.for_each.is_array()) {
    items_ = step_.for_each;
    return std::nullopt;
  }
  try {
    std::string code = step_.for_each.get<std::string>();
    ExpressionEvaluator evaluator(scope);
    items_ = is_single_expression(code) ? evaluator.resolve(code) : evaluator.evaluate(code);
  } catch (const ExpressionError& e) {
    if (!dry_run_.enabled || !reads_missing_outputs(e)) return "for_each of step '" + step_.id + "': " + e.what();
    items_ = Json();
  }
  if (items_.is_object() && items_.empty()) items_ = Json::array();  // an empty Lua table
  if (!items_.is_array() && dry_run_.enabled) {
    // The list comes from steps a dry run did not run: show the body once, for a stand-in item.
    (*dry_run_.print)(path_ + ": its items come from what a dry run does not run; its steps, for one item:");
    items_ = Json::array({"<an item of " + step_.id + ">"});
  }
  if (!items_.is_array())
    return "for_each of step '" + step_.id + "' must give a list, not " + std::string(items_.type_name());
  return std::nullopt;
}

std::optional<std::string> ForEachRunner::evaluate_workers(const Json& scope) {
  int concurrency = step_.concurrency;
  if (!step_.concurrency_expr.empty()) {
    try {
      Json v = ExpressionEvaluator(scope).resolve(step_.concurrency_expr);
      if (v.is_string()) v = parse_json_limited(v.get<std::string>());
      if (!v.is_number_integer() || v.get<int>() < 1)
        throw ExpressionError("gave " + v.dump() + ", not a whole number of at least 1");
      concurrency = v.get<int>();
    } catch (const ExpressionError& e) {
      return "concurrency of step '" + step_.id + "': " + e.what();
    }
  }
  workers_ = std::min<size_t>(std::max(1, concurrency), std::max<size_t>(count_, 1));
  if (workers_ > kMostInFlight) {
    log_.warn("concurrency " + std::to_string(workers_) + " of step '" + step_.id + "' runs " +
              std::to_string(kMostInFlight) +
              " items at a time: each waiting item is a fiber with a stack mapping of " +
              "its own, and the kernel allows a process about 65,000 mappings");
    workers_ = kMostInFlight;
  }
  return std::nullopt;
}

void ForEachRunner::run_items(const Json& scope, CancelToken& cancel) {
  results_.assign(count_, Json());
  states_.assign(count_, std::nullopt);
  // Each worker takes the next index until none is left, a failure beyond tolerance stops the
  // launching, or the run is cancelled; items already running finish.
  auto worker = [&] {
    for (;;) {
      if (stop_launching_ || cancel.cancelled()) return;
      size_t i = next_++;
      if (i >= count_) return;
      run_item(i, scope, cancel);
    }
  };
  if (workers_ <= 1) {
    worker();
    return;
  }
  // Fibers, not threads: an item that waits (a poll's interval, a retry's backoff, a request)
  // parks and costs its stack's few touched pages (engine/io/fiber_scheduler.h).
  run_concurrently(
      workers_, [&](size_t) { worker(); }, clock_);
}

// run_item's frame stays small, the work around the item's run out of line: a waiting item
// holds it on its parked stack for as long as it waits.
void ForEachRunner::run_item(size_t i, const Json& scope, CancelToken& cancel) {
  Json item_scope = item_scope_of(i, scope);
  const auto item_token = std::make_unique<CancelToken>(cancel);  // on the heap: see AttemptRunner::attempt
  CancelToken& item_cancel = *item_token;
  const std::string item_path = for_each_item_path(path_, i);
  const bool reported = report_item_start(i, item_path);
  const Outcome o = run_item_(item_scope, item_cancel, item_path);
  item_ended(i, item_path, reported, o, item_scope);
}

Json ForEachRunner::item_scope_of(size_t i, const Json& scope) {
  std::lock_guard lock(scope_mutex_);
  return for_each_item_scope(step_, scope, items_, i);
}

bool ForEachRunner::report_item_start(size_t i, const std::string& item_path) {
  const bool reported = finished_before(recorder_, item_path);
  if (recorder_ && !reported) {
    recorder_->step_started(item_path, 0);
    recorder_->live(item_path, {{"status", to_string(StepState::kRunning)}, {"item", short_item(items_[i])}});
  }
  return reported;
}

void ForEachRunner::item_ended(size_t i, const std::string& item_path, bool reported, const Outcome& o,
                               Json& item_scope) {
  Json steps_out = Json::object();
  for (const auto& id : body_ids_)
    if (item_scope["steps"].contains(id)) steps_out[id] = item_scope["steps"][id];
  results_[i] = {{"index", i}, {"item", items_[i]}, {"status", to_string(o.state)}, {"steps", steps_out}};
  if (!o.error.empty()) results_[i]["error"] = o.error;
  states_[i] = o.state;
  if (o.is(StepState::kPartial)) any_partial_ = true;
  if (o.is(StepState::kFailed)) {
    size_t f = ++failures_;
    if (o.finally_failed) ++finally_failures_;
    if (f > allowed_failures_) stop_launching_ = true;
    // The error itself was logged once, by the step where it happened.
    std::string name = interpolation_text(items_[i]);
    if (name.size() > 60) name = name.substr(0, 57) + "...";
    log_.warn("item " + std::to_string(i) + " (" + name + ") failed" +
              (o.finally_failed ? ", and so did its finally steps" : ""));
  }
  // Last: its event waits for a commit shared with other items (the fiber parks), and items
  // ending meanwhile must already see this one's failure and stop launching.
  if (recorder_ && !reported) report_item_end(i, item_path, o, steps_out);
}

void ForEachRunner::report_item_end(size_t i, const std::string& item_path, const Outcome& o, const Json& steps_out) {
  const std::string status = to_string(o.state);
  // A cancelled item stays "running" in the journal, as a cancelled step does: it is owed.
  if (!o.is(StepState::kCancelled)) {
    recorder_->step_finished(item_path, status, 0, Json::object(), "", o.error, Durability::kWithNextWrite);
    const bool failed = o.is(StepState::kFailed);
    std::string name = short_item(items_[i]);
    if (name.size() > 60) name = name.substr(0, 57) + "...";
    const Json data = {
        {"item", items_[i]}, {"index", i}, {"outputs", steps_out}, {"error", o.error.empty() ? Json() : Json(o.error)}};
    recorder_->event(item_path, failed ? "item_failed" : "item_succeeded",
                     "item " + std::to_string(i) + " (" + name + ") " + (failed ? "failed: " + o.error : status), data);
  }
  recorder_->live(item_path, {{"status", o.is(StepState::kPartial) ? to_string(StepState::kSucceeded) : status}});
}

Json ForEachRunner::summarize() {
  Json list = Json::array();
  Json failed_items = Json::array();
  size_t succeeded = 0, not_started = 0;
  for (size_t i = 0; i < count_; ++i) {
    if (!states_[i]) {
      ++not_started;
      list.push_back({{"index", i}, {"item", items_[i]}, {"status", kNotStarted}});
      continue;
    }
    if (*states_[i] == StepState::kSucceeded || *states_[i] == StepState::kPartial)
      ++succeeded;
    else if (*states_[i] == StepState::kFailed)
      failed_items.push_back(items_[i]);
    list.push_back(std::move(results_[i]));
  }
  // Counts, not states: "succeeded" counts the items that ended succeeded or partial.
  Json outputs = {{"items", std::move(list)},
                  {"count", count_},
                  {"succeeded", succeeded},
                  {"failed", failures_.load()},
                  {"failed_items", std::move(failed_items)},
                  {"not_started", not_started}};
  outputs["partial"] = any_partial_.load();
  return outputs;
}

Outcome ForEachRunner::judge(const CancelToken& cancel) const {
  if (cancel.cancelled()) return Outcome::cancelled(cancel.reason());
  const size_t failures = failures_.load();
  const std::string failed_text = std::to_string(failures) + " of " + std::to_string(count_) + " items failed";
  if (finally_failures_ > 0) {
    Outcome o = Outcome::failed(failed_text + ", " + std::to_string(finally_failures_.load()) +
                                " of them in their finally steps (not tolerated: cleanup did not happen)");
    o.finally_failed = true;
    return o;
  }
  if (failures > allowed_failures_) {
    Outcome o = Outcome::failed(failed_text +
                                (allowed_failures_ ? " (tolerating " + std::to_string(allowed_failures_) + ")" : ""));
    log_.error(o.error);
    return o;
  }
  if (failures > 0 && step_.tolerate && step_.tolerate->partial_is_success) {
    log_.info(failed_text + ", tolerated (tolerate.outcome: succeeded)");
    return Outcome::ok();
  }
  if (failures > 0 || any_partial_) {
    log_.warn(failures > 0 ? failed_text + ", within tolerance: the run will end partial" : "items ended partial");
    return Outcome{StepState::kPartial, failures > 0 ? failed_text : "items ended partial"};
  }
  return Outcome::ok();
}

}  // namespace flowrun
