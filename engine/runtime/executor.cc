#include "engine/runtime/executor.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <set>
#include <thread>

#include "engine/sandbox/expression.h"
#include "engine/load/inputs.h"
#include "engine/io/json_parse.h"
#include "engine/io/output_limit.h"
#include "engine/step_api/poll_loop.h"
#include "engine/io/step_error.h"
#include "engine/step_api/step_registry.h"
#include "engine/io/utf8.h"
#include "engine/runtime/attempt_runner.h"

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
                {"run", {{"id", options_.run_id}, {"workflow", workflow_.name}, {"status", to_string(RunState::kRunning)}}}};
  scope["env"] = environment_json();
  Json secrets = Json::object();
  for (const auto& name : workflow_.secrets)
    if (const char* v = std::getenv(name.c_str())) secrets[name] = v;
  scope["secrets"] = secrets;

  run_log_.info("run " + options_.run_id + ": " + workflow_.name + (options_.dry_run ? " (dry run)" : ""));
  std::string env_error = apply_env(workflow_.env, scope);
  Outcome body = !env_error.empty()        ? Outcome::failed("env of the workflow: " + env_error)
                 : options_.cleanup_only ? run_cleanup(workflow_.steps, scope, "")
                                         : run_sequence(workflow_.steps, scope, cancel, "");
  if (!env_error.empty()) run_log_.error(body.error);
  Outcome final_outcome = body;
  if (!workflow_.finally.empty()) final_outcome = run_finally(workflow_.finally, scope, "finally", body);

  RunResult result;
  result.duration = services_.clock.now() - started;
  result.steps = scope["steps"];
  {
    std::lock_guard lock(mutex_);
    result.records = records_;
  }
  result.error = final_outcome.error;
  switch (final_outcome.state) {
    case StepState::kFailed: result.status = RunState::kFailed; break;
    case StepState::kCancelled:
      result.status = options_.detach_on_cancel && !options_.cleanup_only ? RunState::kDetached : RunState::kCancelled;
      break;
    case StepState::kPartial: result.status = RunState::kPartial; break;
    default: result.status = RunState::kSucceeded; break;
  }
  return result;
}

bool Executor::reads_missing_outputs(const ExpressionError& e) {
  // What Lua says when an expression reads through a nil: the outputs a dry run lacks. Any other
  // error (a loop stopped, a bad call) is as real in a dry run as in a run.
  return std::string_view(e.what()).find("nil value") != std::string_view::npos;
}

std::string Executor::apply_env(const Json& env, Json& scope) {
  for (const auto& [name, value] : env.items()) {
    try {
      scope["env"][name] = interpolation_text(ExpressionEvaluator(scope).resolve(value));
    } catch (const ExpressionError& e) {
      return name + ": " + e.what();
    }
  }
  return {};
}

Executor::Outcome Executor::run_sequence(const std::vector<Step>& steps, Json& scope, CancelToken& cancel,
                                         const std::string& prefix) {
  Outcome result = Outcome::ok();
  for (const auto& step : steps) {
    if (cancel.cancelled()) return Outcome::cancelled(cancel.reason());
    if (result.is(StepState::kFailed) && !runs_after_failure(step)) continue;
    std::string path = prefix.empty() ? step.id : prefix + "." + step.id;
    Outcome o;
    if (step.env.empty()) {
      o = run_step(step, scope, cancel, path);
    } else {
      // The step's env holds for it and the steps inside it, then the sequence's env is back.
      Json outer_env = scope["env"];
      std::string env_error = apply_env(step.env, scope);
      o = env_error.empty() ? run_step(step, scope, cancel, path)
                            : Outcome::failed("env of step '" + step.id + "': " + env_error);
      if (!env_error.empty()) logs_.logger(path).error(o.error);
      scope["env"] = std::move(outer_env);
    }
    result.finally_failed = result.finally_failed || o.finally_failed;
    if (o.is(StepState::kCancelled)) return o;
    if (o.is(StepState::kFailed) && step.continue_on_error) o.state = StepState::kPartial;
    if (o.is(StepState::kFailed)) {
      if (!result.is(StepState::kFailed)) {
        result.state = StepState::kFailed;
        result.error = o.error;
        scope["run"]["status"] = to_string(StepState::kFailed);  // what failure() and success() read
      }
    } else if (o.is(StepState::kPartial) && result.is(StepState::kSucceeded)) {
      result.state = StepState::kPartial;
    }
  }
  return result;
}

bool Executor::runs_after_failure(const Step& step) {
  const std::string& e = step.if_expr;
  for (const char* fn : {"always", "failure", "cancelled"}) {
    for (size_t at = e.find(fn); at != std::string::npos; at = e.find(fn, at + 1)) {
      const size_t end = at + std::strlen(fn);
      const bool starts_word = at == 0 || !(std::isalnum(static_cast<unsigned char>(e[at - 1])) || e[at - 1] == '_' || e[at - 1] == '.');
      size_t next = end;
      while (next < e.size() && e[next] == ' ') ++next;
      if (starts_word && next < e.size() && e[next] == '(') return true;
    }
  }
  return false;
}

Executor::Outcome Executor::run_finally(const std::vector<Step>& steps, Json& scope, const std::string& prefix,
                                        const Outcome& body) {
  if (steps.empty()) return body;
  if (body.is(StepState::kCancelled) && options_.detach_on_cancel) return body;  // owed, for resume or cancel
  // Cleanup gets a token of its own: a cancelled body must still destroy what it created.
  CancelToken cleanup(*cleanup_cancel_);
  Json saved_run = scope["run"];
  scope["run"]["status"] = to_string(body.state);
  scope["run"]["error"] = body.error;
  Outcome o = run_sequence(steps, scope, cleanup, prefix);
  scope["run"] = saved_run;
  // A cleanup that did not happen (an instance still rented) outweighs whatever the body did,
  // and is named first.
  if (o.is(StepState::kFailed)) {
    Outcome failed = Outcome::failed(o.error);
    failed.finally_failed = true;
    return failed;
  }
  Outcome combined = body;
  combined.finally_failed = body.finally_failed || o.finally_failed;
  if (o.is(StepState::kCancelled) && !body.is(StepState::kFailed)) return o;
  if (o.is(StepState::kPartial) && body.is(StepState::kSucceeded)) combined.state = StepState::kPartial;
  return combined;
}

Executor::Outcome Executor::run_step(const Step& step, Json& scope, CancelToken& cancel, const std::string& path) {
  StepLog log = logs_.logger(path);
  const TimePoint started = services_.clock.now();
  StepRecord rec;
  rec.path = path;
  rec.type = describe_type(step);
  if (reuse_recorded(step, scope, path, log, rec)) return Outcome{rec.status, {}, false};
  scope["steps"][step.id] = {{"status", to_string(StepState::kRunning)}, {"outputs", Json::object()}};
  if (options_.recorder && step.kind != Step::Kind::kAction) options_.recorder->step_started(path, 0);

  if (!step.if_expr.empty()) {
    bool run_it = false;
    try {
      run_it = ExpressionEvaluator(scope).condition(step.if_expr);  // with or without ${{ }}
    } catch (const ExpressionError& e) {
      if (options_.dry_run && reads_missing_outputs(e)) {
        // It reads outputs of steps a dry run did not run: show what the step would do.
        options_.print(path + ": `if` depends on what a dry run does not know; shown as if true");
        run_it = true;
      } else {
        std::string msg = "`if` of step '" + step.id + "' (" + step.loc.file + ":" + std::to_string(step.loc.line) +
                          "): " + e.what();
        log.error(msg);
        rec.status = StepState::kFailed;
        scope["steps"][step.id] = {{"status", to_string(rec.status)}, {"outcome", to_string(rec.status)},
                                   {"outputs", Json::object()}, {"error", msg}};
        rec.error = msg;
        record(rec);
        return Outcome::failed(msg);
      }
    }
    if (!run_it) {
      log.info("skipped: `if: " + step.if_expr + "` is false");
      rec.status = StepState::kSkipped;
      scope["steps"][step.id] = {{"status", to_string(rec.status)}, {"outcome", to_string(rec.status)},
                                 {"outputs", Json::object()}};
      if (options_.recorder)
        options_.recorder->step_finished(path, to_string(rec.status), 0, Json::object(), "", "",
                                         Durability::kWithNextWrite);
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
  rec.status = o.state;
  // `outcome` is GitHub Actions' name for the same thing; both are offered.
  Json done = {{"status", to_string(rec.status)}, {"outcome", to_string(rec.status)}, {"outputs", outputs}};
  if (!o.error.empty()) done["error"] = o.error;
  scope["steps"][step.id] = done;
  if (o.is(StepState::kFailed) && step.continue_on_error) log.warn("failed; continuing (continue_on_error)");
  // A cancelled step stays "running" in the journal: it is owed, not finished.
  if (options_.recorder && !o.is(StepState::kCancelled) && !options_.dry_run)
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
  auto state = done ? parse_step_state(done->status) : std::nullopt;
  if (!state || (*state != StepState::kSucceeded && *state != StepState::kSkipped && *state != StepState::kPartial))
    return false;
  scope["steps"][step.id] = {{"status", done->status}, {"outcome", done->status}, {"outputs", done->outputs}};
  log.info(done->status + " in an earlier process of this run; reusing its outputs");
  rec.status = *state;
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
  Outcome result = cancelled;
  // A cleanup owed by a group or an item that fails makes the cancel fail: it is named, not lost.
  auto note = [&result](const Outcome& o) {
    if (o.is(StepState::kFailed) && !result.is(StepState::kFailed)) result = o;
  };
  for (const auto& step : steps) {
    std::string path = prefix.empty() ? step.id : prefix + "." + step.id;
    if (!options_.recorder->started_under(path)) continue;  // never started: nothing is owed
    if (step.kind == Step::Kind::kAction) {
      load_recorded({step}, scope, prefix);
    } else if (step.kind == Step::Kind::kGroup) {
      note(run_cleanup(step.steps, scope, path));
      note(run_finally(step.finally, scope, path + ".finally", cancelled));
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
        note(run_finally(step.finally, item_scope, item_path + ".finally", cancelled));
      }
    }
  }
  return result;
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
    options_.print("    " + key + ": " + services_.redactor.redact(value.is_string() ? value.get<std::string>() : dump_json(value)));
  return shown;
}

Executor::Outcome Executor::run_action(const Step& step, Json& scope, CancelToken& cancel, const std::string& path,
                                       const StepLog& log, Json& outputs, int& attempts) {
  const StepType* type = type_of(step);
  if (!type) return Outcome::failed("step type '" + step.type + "' is not registered");

  if (options_.dry_run) {
    dry_run_action(step, scope, path);
    // It would act: not run. Its outputs stay empty, so what later steps read from them is
    // shown as written.
    if (type->info().side_effects) return Outcome::ok();
  }

  Json with;
  try {
    with = ExpressionEvaluator(scope).resolve(step.with);
  } catch (const ExpressionError& e) {
    if (options_.dry_run && reads_missing_outputs(e)) {
      options_.print("    (not run: its parameters read outputs a dry run does not have)");
      return Outcome::ok();
    }
    std::string msg = step.loc.file + ":" + std::to_string(step.with_loc.line) + ": parameters of step '" + step.id +
                      "': " + e.what();
    log.error(msg);
    return Outcome::failed(msg);
  }

  const AttemptRunner::Env env{workflow_, services_, random_, options_.recorder, options_.run_id};
  AttemptRunner runner(env, step, *type, with, path, describe_type(step), log,
                       [this](const std::vector<Step>& steps, Json& nested_scope, CancelToken& nested_cancel,
                              const std::string& nested_path) {
                         return run_sequence(steps, nested_scope, nested_cancel, nested_path);
                       });
  return runner.run(scope, cancel, outputs, attempts);
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
      if (!options_.dry_run || !reads_missing_outputs(e)) {
        log.error("for_each of step '" + step.id + "': " + e.what());
        return Outcome::failed("for_each of step '" + step.id + "': " + e.what());
      }
      items = Json();
    }
    if (items.is_object() && items.empty()) items = Json::array();  // an empty Lua table
    if (!items.is_array() && options_.dry_run) {
      // The list comes from steps a dry run did not run: show the body once, for a stand-in item.
      options_.print(path + ": its items come from what a dry run does not run; its steps, for one item:");
      items = Json::array({"<an item of " + step.id + ">"});
    }
    if (!items.is_array()) {
      std::string msg = "for_each of step '" + step.id + "' must give a list, not " + std::string(items.type_name());
      log.error(msg);
      return Outcome::failed(msg);
    }
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
      if (v.is_string()) v = parse_json_limited(v.get<std::string>());
      if (!v.is_number_integer() || v.get<int>() < 1) throw ExpressionError("gave " + v.dump() + ", not a whole number of at least 1");
      concurrency = v.get<int>();
    } catch (const ExpressionError& e) {
      log.error("concurrency of step '" + step.id + "': " + e.what());
      return Outcome::failed("concurrency of step '" + step.id + "': " + e.what());
    }
  }
  const size_t workers = std::min<size_t>(std::max(1, concurrency), std::max<size_t>(n, 1));
  log.info("for_each over " + std::to_string(n) + " items, " + std::to_string(workers) + " at a time");

  std::vector<Json> results(n);
  std::atomic<size_t> next{0};
  std::atomic<size_t> failures{0};
  std::atomic<size_t> finally_failures{0};  // never tolerated
  std::atomic<bool> any_partial{false};
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
    results[i] = {{"index", i}, {"item", items[i]}, {"status", to_string(o.state)}, {"steps", steps_out}};
    if (!o.error.empty()) results[i]["error"] = o.error;
    if (o.is(StepState::kPartial)) any_partial = true;
    if (o.is(StepState::kFailed)) {
      size_t f = ++failures;
      if (o.finally_failed) ++finally_failures;
      if (f > allowed_failures) stop_launching = true;
      // The error itself was logged once, by the step where it happened.
      std::string name = interpolation_text(items[i]);
      if (name.size() > 60) name = name.substr(0, 57) + "...";
      log.warn("item " + std::to_string(i) + " (" + name + ") failed" +
               (o.finally_failed ? ", and so did its finally steps" : ""));
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
    } else if (results[i]["status"] == to_string(StepState::kSucceeded) ||
               results[i]["status"] == to_string(StepState::kPartial)) {
      ++succeeded;
    } else if (results[i]["status"] == to_string(StepState::kFailed)) {
      failed_items.push_back(items[i]);
    }
    list.push_back(results[i]);
  }
  outputs = {{"items", list}, {"count", n}, {"succeeded", succeeded}, {"failed", failures.load()},
             {"failed_items", failed_items}, {"not_started", not_started}};
  outputs["partial"] = any_partial.load();
  if (cancel.cancelled()) return Outcome::cancelled(cancel.reason());
  const std::string failed_text = std::to_string(failures.load()) + " of " + std::to_string(n) + " items failed";
  if (finally_failures > 0) {
    Outcome o = Outcome::failed(failed_text + ", " + std::to_string(finally_failures.load()) +
                                " of them in their finally steps (not tolerated: cleanup did not happen)");
    o.finally_failed = true;
    return o;
  }
  if (failures > allowed_failures) {
    Outcome o = Outcome::failed(failed_text +
                                (allowed_failures ? " (tolerating " + std::to_string(allowed_failures) + ")" : ""));
    log.error(o.error);
    return o;
  }
  if (failures > 0 && step.tolerate && step.tolerate->partial_is_success) {
    log.info(failed_text + ", tolerated (tolerate.outcome: succeeded)");
    return Outcome::ok();
  }
  if (failures > 0 || any_partial) {
    log.warn(failures > 0 ? failed_text + ", within tolerance: the run will end partial" : "items ended partial");
    return Outcome{StepState::kPartial, failures > 0 ? failed_text : "items ended partial"};
  }
  return Outcome::ok();
}

}  // namespace flowrun
