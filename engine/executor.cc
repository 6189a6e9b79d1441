#include "engine/executor.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <set>
#include <thread>

#include "engine/expression.h"
#include "engine/inputs.h"
#include "engine/poll_loop.h"
#include "engine/retry_policy.h"
#include "engine/step_error.h"
#include "engine/step_registry.h"

namespace flowrun {
namespace {

std::string describe_type(const Step& step) {
  switch (step.kind) {
    case Step::Kind::kForEach: return "for_each";
    case Step::Kind::kGroup: return "group";
    case Step::Kind::kAction: return step.type == "lua" ? "lua:" + step.lua_path : step.type;
  }
  return step.type;
}

}  // namespace

const char* to_string(StepStatus s) {
  switch (s) {
    case StepStatus::kSucceeded: return "succeeded";
    case StepStatus::kFailed: return "failed";
    case StepStatus::kSkipped: return "skipped";
    case StepStatus::kCancelled: return "cancelled";
  }
  return "?";
}

const char* to_string(RunStatus s) {
  switch (s) {
    case RunStatus::kSucceeded: return "succeeded";
    case RunStatus::kFailed: return "failed";
    case RunStatus::kCancelled: return "cancelled";
  }
  return "?";
}

Executor::Executor(const Workflow& workflow, const StepRegistry& registry, Services& services, RandomSource& random,
                   const LogHub& logs, ExecutorOptions options)
    : workflow_(workflow), registry_(registry), services_(services), random_(random), logs_(logs),
      options_(std::move(options)), run_log_(logs.logger(workflow.name)) {}

void Executor::record(StepRecord r) {
  std::lock_guard lock(mutex_);
  records_.push_back(std::move(r));
}

const StepType* Executor::type_of(const Step& step) const {
  if (step.type == "lua") {
    auto it = workflow_.script_types.find(step.lua_path);
    return it == workflow_.script_types.end() ? nullptr : it->second.get();
  }
  return registry_.find(step.type);
}

bool Executor::side_effect_free(const Step& step) const {
  if (step.kind != Step::Kind::kAction) return false;
  const StepType* type = type_of(step);
  return type && !type->info().side_effects;
}

RunResult Executor::run(const Json& inputs, CancelToken& cancel, CancelToken& cleanup_cancel) {
  cleanup_cancel_ = &cleanup_cancel;
  const TimePoint started = services_.clock.now();
  Json scope = {{"inputs", inputs},
                {"env", Json::object()},
                {"steps", Json::object()},
                {"run", {{"id", options_.run_id}, {"workflow", workflow_.name}, {"status", "running"}}}};
  scope["env"] = environment_json();
  Json secrets = Json::object();
  for (const auto& name : workflow_.secrets)
    if (const char* v = std::getenv(name.c_str())) secrets[name] = v;
  scope["secrets"] = secrets;

  run_log_.info("run " + options_.run_id + ": " + workflow_.name + (options_.dry_run ? " (dry run)" : ""));
  Outcome body = options_.cleanup_only ? run_cleanup(workflow_.steps, scope, "")
                                       : run_sequence(workflow_.steps, scope, cancel, "");
  Outcome final_outcome = body;
  if (!workflow_.finally.empty()) final_outcome = run_finally(workflow_.finally, scope, "finally", body);

  RunResult result;
  result.duration = services_.clock.now() - started;
  result.steps = scope["steps"];
  {
    std::lock_guard lock(mutex_);
    result.records = records_;
  }
  using S = Outcome::Status;
  if (body.status == S::kCancelled || final_outcome.status == S::kCancelled) {
    result.status = RunStatus::kCancelled;
    result.error = body.status == S::kCancelled ? body.error : final_outcome.error;
  } else if (body.status == S::kFailed || final_outcome.status == S::kFailed) {
    result.status = RunStatus::kFailed;
    result.error = body.status == S::kFailed ? body.error : final_outcome.error;
  }
  return result;
}

Executor::Outcome Executor::run_sequence(const std::vector<Step>& steps, Json& scope, CancelToken& cancel,
                                         const std::string& prefix) {
  for (const auto& step : steps) {
    if (cancel.cancelled()) return Outcome::cancelled(cancel.reason());
    std::string path = prefix.empty() ? step.id : prefix + "." + step.id;
    Outcome o = run_step(step, scope, cancel, path);
    if (o.status == Outcome::Status::kCancelled) return o;
    if (o.status == Outcome::Status::kFailed && !step.continue_on_error) return o;
  }
  return Outcome::ok();
}

Executor::Outcome Executor::run_finally(const std::vector<Step>& steps, Json& scope, const std::string& prefix,
                                        const Outcome& body) {
  if (steps.empty()) return body;
  if (body.status == Outcome::Status::kCancelled && !options_.finally_on_cancel) return body;  // detached
  // Cleanup gets a token of its own: a cancelled body must still destroy what it created.
  CancelToken cleanup(*cleanup_cancel_);
  const char* status = body.status == Outcome::Status::kOk       ? "succeeded"
                       : body.status == Outcome::Status::kFailed ? "failed"
                                                                 : "cancelled";
  Json saved_run = scope["run"];
  scope["run"]["status"] = status;
  scope["run"]["error"] = body.error;
  Outcome o = run_sequence(steps, scope, cleanup, prefix);
  scope["run"] = saved_run;
  if (body.status != Outcome::Status::kOk) return body;  // the first failure is the one to report
  return o;
}

Executor::Outcome Executor::run_step(const Step& step, Json& scope, CancelToken& cancel, const std::string& path) {
  StepLog log = logs_.logger(path);
  const TimePoint started = services_.clock.now();
  StepRecord rec;
  rec.path = path;
  rec.type = describe_type(step);
  if (reuse_recorded(step, scope, path, log, rec)) return Outcome::ok();
  scope["steps"][step.id] = {{"status", "running"}, {"outputs", Json::object()}};
  if (options_.recorder && step.kind != Step::Kind::kAction) options_.recorder->step_started(path, 0);

  if (!step.if_expr.empty()) {
    bool run_it = false;
    try {
      run_it = ExpressionEvaluator(scope).condition(step.if_expr);  // with or without ${{ }}
    } catch (const ExpressionError& e) {
      std::string msg = "`if` of step '" + step.id + "' (" + step.loc.file + ":" + std::to_string(step.loc.line) +
                        "): " + e.what();
      log.error(msg);
      scope["steps"][step.id] = {{"status", "failed"}, {"outputs", Json::object()}, {"error", msg}};
      rec.status = StepStatus::kFailed;
      rec.error = msg;
      record(rec);
      return Outcome::failed(msg);
    }
    if (!run_it) {
      log.info("skipped: `if: " + step.if_expr + "` is false");
      scope["steps"][step.id] = {{"status", "skipped"}, {"outputs", Json::object()}};
      rec.status = StepStatus::kSkipped;
      if (options_.recorder)
        options_.recorder->step_finished(path, "skipped", 0, Json::object(), "", "", Durability::kWithNextWrite);
      record(rec);
      return Outcome::ok();
    }
  }

  Json outputs = Json::object();
  Outcome o;
  int attempts = 0;
  switch (step.kind) {
    case Step::Kind::kGroup: {
      Outcome body = run_sequence(step.steps, scope, cancel, path);
      o = run_finally(step.finally, scope, path + ".finally", body);
      break;
    }
    case Step::Kind::kForEach: o = run_for_each(step, scope, cancel, path, log, outputs); break;
    case Step::Kind::kAction: o = run_action(step, scope, cancel, path, log, outputs, attempts); break;
  }

  rec.attempts = attempts;
  rec.duration = services_.clock.now() - started;
  rec.error = o.error;
  rec.status = o.status == Outcome::Status::kOk       ? StepStatus::kSucceeded
               : o.status == Outcome::Status::kFailed ? StepStatus::kFailed
                                                      : StepStatus::kCancelled;
  Json done = {{"status", to_string(rec.status)}, {"outputs", outputs}};
  if (!o.error.empty()) done["error"] = o.error;
  scope["steps"][step.id] = done;
  if (o.status == Outcome::Status::kFailed && step.continue_on_error)
    log.warn("failed, continuing (continue_on_error): " + o.error);
  // A cancelled step stays "running" in the journal: it is owed, not finished.
  if (options_.recorder && o.status != Outcome::Status::kCancelled && !options_.dry_run)
    options_.recorder->step_finished(path, to_string(rec.status), attempts, outputs, "", o.error,
                                     side_effect_free(step) ? Durability::kWithNextWrite : Durability::kNow);
  record(std::move(rec));
  return o;
}

bool Executor::reuse_recorded(const Step& step, Json& scope, const std::string& path, const StepLog& log,
                              StepRecord& rec) {
  // A nested list (on_stall) runs because of what its step just saw: a resume must act again,
  // not replay an earlier run's outputs.
  if (!options_.recorder || path.find('#') != std::string::npos) return false;
  auto done = options_.recorder->recorded(path);
  if (!done || (done->status != "succeeded" && done->status != "skipped")) return false;
  scope["steps"][step.id] = {{"status", done->status}, {"outputs", done->outputs}};
  log.info(done->status + " in an earlier process of this run; reusing its outputs");
  rec.status = done->status == "succeeded" ? StepStatus::kSucceeded : StepStatus::kSkipped;
  rec.attempts = done->attempts;
  rec.type += " (resumed)";
  record(rec);
  return true;
}

void Executor::load_recorded(const std::vector<Step>& steps, Json& scope, const std::string& prefix) {
  for (const auto& step : steps) {
    std::string path = prefix.empty() ? step.id : prefix + "." + step.id;
    if (auto r = options_.recorder->recorded(path))
      scope["steps"][step.id] = {{"status", r->status}, {"outputs", r->outputs}, {"error", r->error}};
    load_recorded(step.steps, scope, path);
  }
}

Executor::Outcome Executor::run_cleanup(const std::vector<Step>& steps, Json& scope, const std::string& prefix) {
  if (!options_.recorder) return Outcome::cancelled("cancelled");
  const Outcome cancelled = Outcome::cancelled("cancelled by flowrun cancel");
  for (const auto& step : steps) {
    std::string path = prefix.empty() ? step.id : prefix + "." + step.id;
    if (!options_.recorder->started_under(path)) continue;  // never started: nothing is owed
    if (step.kind == Step::Kind::kAction) {
      load_recorded({step}, scope, prefix);
    } else if (step.kind == Step::Kind::kGroup) {
      run_cleanup(step.steps, scope, path);
      run_finally(step.finally, scope, path + ".finally", cancelled);
    } else {
      Json items = step.for_each;
      if (items.is_string()) {
        try {
          items = ExpressionEvaluator(scope).resolve(items.get<std::string>());
        } catch (const ExpressionError&) {
          items = Json::array();
        }
      }
      if (!items.is_array()) continue;
      for (size_t i = 0; i < items.size(); ++i) {
        std::string item_path = path + "[" + std::to_string(i) + "]";
        if (!options_.recorder->started_under(item_path)) continue;
        Json item_scope = scope;
        item_scope[step.as] = items[i];
        item_scope["loop"] = {{"index", i}, {"count", items.size()}};
        load_recorded(step.steps, item_scope, item_path);
        run_finally(step.finally, item_scope, item_path + ".finally", cancelled);
      }
    }
  }
  return cancelled;
}

Json Executor::dry_run_action(const Step& step, Json& scope, const std::string& path) {
  Json shown = Json::object();
  for (const auto& [key, value] : step.with.items()) {
    try {
      shown[key] = ExpressionEvaluator(scope).resolve(value);
      // Outputs of steps a dry run did not execute are nil: show what is written instead.
      if (shown[key].is_null() && value.is_string()) shown[key] = value;
    } catch (const ExpressionError&) {
      shown[key] = value;  // depends on outputs a dry run does not have: show it as written
    }
  }
  std::string line = path + " (" + describe_type(step) + ")";
  if (!step.if_expr.empty()) line += " if " + step.if_expr;
  options_.print(line);
  for (const auto& [key, value] : shown.items())
    options_.print("    " + key + ": " + services_.redactor.redact(value.is_string() ? value.get<std::string>() : value.dump()));
  return shown;
}

Executor::Outcome Executor::run_action(const Step& step, Json& scope, CancelToken& cancel, const std::string& path,
                                       const StepLog& log, Json& outputs, int& attempts) {
  const StepType* type = type_of(step);
  if (!type) return Outcome::failed("step type '" + step.type + "' is not registered");

  if (options_.dry_run) {
    dry_run_action(step, scope, path);
    if (type->info().side_effects) return Outcome::ok();
  }

  Json with;
  try {
    with = ExpressionEvaluator(scope).resolve(step.with);
  } catch (const ExpressionError& e) {
    std::string msg = step.loc.file + ":" + std::to_string(step.with_loc.line) + ": parameters of step '" + step.id +
                      "': " + e.what();
    log.error(msg);
    return Outcome::failed(msg);
  }

  const StepPolicies policies = effective_policies(step, workflow_);
  const RetryPolicy& retry = *policies.retry;
  Clock& clock = services_.clock;
  TimePoint started = clock.now();
  if (options_.recorder) {
    // A resumed step keeps the deadline of its first start, in an earlier process.
    if (auto earlier = options_.recorder->recorded(path); earlier && earlier->started_ms > 0) {
      auto now_ms = std::chrono::duration_cast<Duration>(std::chrono::system_clock::now().time_since_epoch()).count();
      started -= Duration(std::max<int64_t>(0, now_ms - earlier->started_ms));
    }
  }
  std::optional<TimePoint> step_deadline;
  if (policies.timeout) step_deadline = started + *policies.timeout;

  for (attempts = 1;; ++attempts) {
    if (cancel.cancelled()) return Outcome::cancelled(cancel.reason());
    std::optional<TimePoint> deadline = step_deadline;
    if (policies.attempt_timeout) {
      TimePoint t = clock.now() + *policies.attempt_timeout;
      if (!deadline || t < *deadline) deadline = t;
    }
    CancelToken attempt_cancel(cancel);
    // A side-effect-free step owes nothing if a crash cuts it short: its start is not recorded.
    if (options_.recorder && type->info().side_effects) options_.recorder->step_started(path, attempts);
    StepContext ctx(step, with, path, attempts, services_, attempt_cancel, deadline, log);
    ctx.run_id = options_.run_id;
    int nested_runs = 0;
    ctx.run_nested = [&, this](const std::string& list, const Json& extra) -> Json {
      auto it = step.nested.find(list);
      if (it == step.nested.end()) return Json::object();
      Json nested_scope = scope;
      for (const auto& [k, v] : extra.items()) nested_scope[k] = v;
      // Each run is its own action ("supervise.on_stall#2.restart"), never reused by a resume.
      std::string nested_path = path + "." + list + "#" + std::to_string(++nested_runs);
      Outcome o = run_sequence(it->second, nested_scope, attempt_cancel, nested_path);
      Json out = Json::object();
      for (const auto& s : it->second) {
        out[s.id] = nested_scope["steps"][s.id];
        scope["steps"][s.id] = out[s.id];  // later steps see what the nested steps produced
      }
      if (o.status == Outcome::Status::kCancelled) throw StepError::cancelled(o.error);
      if (o.status == Outcome::Status::kFailed) throw StepError::permanent(list + " failed: " + o.error);
      return out;
    };
    try {
      if (attempts == 1) log.debug("starting (" + describe_type(step) + ")");
      if (type->info().poller) {
        PollSettings settings = poll_settings(type->info(), with);
        auto poller = type->start_polling(ctx);
        outputs = run_poll_loop(*poller, ctx, settings);
      } else {
        outputs = type->run(ctx);
      }
      if (!outputs.is_object()) outputs = Json{{"result", outputs}};
      Duration took = clock.now() - started;
      if (attempts > 1)
        log.info("succeeded on attempt " + std::to_string(attempts) + "/" + std::to_string(retry.attempts) + " after " +
                 format_duration(took));
      else
        log.debug("succeeded in " + format_duration(took));
      return Outcome::ok();
    } catch (const std::exception& raw) {
      const auto* se = dynamic_cast<const StepError*>(&raw);
      StepError error = se ? *se : StepError::permanent(std::string("internal error: ") + raw.what());
      if (cancel.cancelled() || error.kind() == ErrorKind::kCancelled) {
        log.warn("cancelled: " + std::string(error.what()));
        return Outcome::cancelled(error.what());
      }
      TimePoint now = clock.now();
      if (step_deadline && now >= *step_deadline) {
        std::string msg = "timed out after " + format_duration(now - started) + " (timeout " +
                          format_duration(*policies.timeout) + ", " + std::to_string(attempts) +
                          (attempts == 1 ? " attempt" : " attempts") + "): " + error.what();
        log.error(msg);
        if (options_.recorder) options_.recorder->event(path, "timeout", msg);
        return Outcome::failed(msg);
      }
      RetryDecision decision = decide_retry(retry, attempts, error, now - started, random_);
      if (decision.retry && step_deadline && now + decision.delay >= *step_deadline) {
        decision.retry = false;
        decision.reason = "the step timeout leaves no time for another attempt";
      }
      std::string head = "attempt " + std::to_string(attempts) + "/" + std::to_string(retry.attempts) + " failed (" +
                         error.kind_name() + "): " + error.what();
      if (options_.recorder) options_.recorder->event(path, decision.retry ? "retry" : "failed", head);
      if (!decision.retry) {
        std::string msg = attempts > 1 || retry.attempts > 1 ? head + "; giving up: " + decision.reason
                                                             : std::string(error.what()) + " (" + error.kind_name() + ")";
        log.error(msg);
        return Outcome::failed(msg);
      }
      log.warn(head + "; retrying in " + format_duration(decision.delay) +
               (error.retry_after() ? " (server's Retry-After)" : ""));
      if (!clock.sleep_for(decision.delay, cancel)) return Outcome::cancelled(cancel.reason());
    }
  }
}

Executor::Outcome Executor::run_for_each(const Step& step, Json& scope, CancelToken& cancel, const std::string& path,
                                         const StepLog& log, Json& outputs) {
  Json items;
  if (step.for_each.is_array()) {
    items = step.for_each;
  } else {
    try {
      std::string code = step.for_each.get<std::string>();
      ExpressionEvaluator evaluator(scope);
      items = is_single_expression(code) ? evaluator.resolve(code) : evaluator.evaluate(code);
    } catch (const ExpressionError& e) {
      return Outcome::failed("for_each of step '" + step.id + "': " + e.what());
    }
    if (items.is_object() && items.empty()) items = Json::array();  // an empty Lua table
    if (!items.is_array())
      return Outcome::failed("for_each of step '" + step.id + "' must give a list, not " + std::string(items.type_name()));
  }
  const size_t n = items.size();
  std::set<std::string> body_ids;
  collect_step_names(step.steps, body_ids);
  collect_step_names(step.finally, body_ids);

  size_t allowed_failures = 0;
  if (step.tolerate)
    allowed_failures = std::max<size_t>(step.tolerate->count,
                                        static_cast<size_t>(std::floor(step.tolerate->percent / 100.0 * n)));
  int concurrency = step.concurrency;
  if (!step.concurrency_expr.empty()) {
    try {
      Json v = ExpressionEvaluator(scope).resolve(step.concurrency_expr);
      if (v.is_string()) v = Json::parse(v.get<std::string>(), nullptr, false);
      if (!v.is_number_integer() || v.get<int>() < 1) throw ExpressionError("gave " + v.dump() + ", not a whole number of at least 1");
      concurrency = v.get<int>();
    } catch (const ExpressionError& e) {
      return Outcome::failed("concurrency of step '" + step.id + "': " + e.what());
    }
  }
  const size_t workers = std::min<size_t>(std::max(1, concurrency), std::max<size_t>(n, 1));
  log.info("for_each over " + std::to_string(n) + " items, " + std::to_string(workers) + " at a time");

  std::vector<Json> results(n);
  std::atomic<size_t> next{0};
  std::atomic<size_t> failures{0};
  std::atomic<bool> stop_launching{false};
  std::mutex scope_mutex;

  auto run_item = [&](size_t i) {
    Json item_scope;
    {
      std::lock_guard lock(scope_mutex);
      item_scope = scope;
    }
    item_scope[step.as] = items[i];
    item_scope["loop"] = {{"index", i}, {"count", n}};
    std::string item_path = path + "[" + std::to_string(i) + "]";
    CancelToken item_cancel(cancel);
    Outcome body = run_sequence(step.steps, item_scope, item_cancel, item_path);
    Outcome o = run_finally(step.finally, item_scope, item_path + ".finally", body);
    Json steps_out = Json::object();
    for (const auto& id : body_ids)
      if (item_scope["steps"].contains(id)) steps_out[id] = item_scope["steps"][id];
    const char* status = o.status == Outcome::Status::kOk ? "succeeded"
                         : o.status == Outcome::Status::kFailed ? "failed" : "cancelled";
    results[i] = {{"index", i}, {"item", items[i]}, {"status", status}, {"steps", steps_out}};
    if (!o.error.empty()) results[i]["error"] = o.error;
    if (o.status == Outcome::Status::kFailed) {
      size_t f = ++failures;
      if (f > allowed_failures) stop_launching = true;
      log.warn("item " + std::to_string(i) + " failed: " + o.error);
    }
  };
  auto worker = [&] {
    for (;;) {
      if (stop_launching || cancel.cancelled()) return;
      size_t i = next++;
      if (i >= n) return;
      run_item(i);
    }
  };
  if (workers <= 1) {
    worker();
  } else {
    std::vector<std::thread> pool;
    for (size_t w = 0; w < workers; ++w) pool.emplace_back(worker);
    for (auto& t : pool) t.join();
  }

  Json list = Json::array();
  Json failed_items = Json::array();
  size_t succeeded = 0, not_started = 0;
  for (size_t i = 0; i < n; ++i) {
    if (results[i].is_null()) {
      ++not_started;
      results[i] = {{"index", i}, {"item", items[i]}, {"status", "not_started"}};
    } else if (results[i]["status"] == "succeeded") {
      ++succeeded;
    } else if (results[i]["status"] == "failed") {
      failed_items.push_back(items[i]);
    }
    list.push_back(results[i]);
  }
  outputs = {{"items", list}, {"count", n}, {"succeeded", succeeded}, {"failed", failures.load()},
             {"failed_items", failed_items}, {"not_started", not_started}};
  if (cancel.cancelled()) return Outcome::cancelled(cancel.reason());
  if (failures > allowed_failures)
    return Outcome::failed(std::to_string(failures.load()) + " of " + std::to_string(n) + " items failed" +
                           (allowed_failures ? " (tolerating " + std::to_string(allowed_failures) + ")" : ""));
  if (failures > 0)
    log.warn(std::to_string(failures.load()) + " of " + std::to_string(n) + " items failed, within tolerance");
  return Outcome::ok();
}

}  // namespace flowrun
