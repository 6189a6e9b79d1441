#include "engine/runtime/executor.h"

#include <algorithm>
#include <cstring>

#include "engine/io/json_parse.h"
#include "engine/io/output_limit.h"
#include "engine/io/step_error.h"
#include "engine/io/utf8.h"
#include "engine/load/inputs.h"
#include "engine/runtime/attempt_runner.h"
#include "engine/runtime/dry_run.h"
#include "engine/runtime/for_each_runner.h"
#include "engine/sandbox/expression.h"
#include "engine/step_api/poll_loop.h"
#include "engine/step_api/step_registry.h"

namespace flowrun {
namespace {

std::string describe_type(const Step& step) {
  switch (step.kind) {
    case Step::Kind::kForEach:
      return "for_each";
    case Step::Kind::kGroup:
      return "group";
    case Step::Kind::kAction:
      return step.type == "lua" ? "lua:" + step.lua_path : step.type;
  }
  return step.type;
}

// An entry of a scope, saved to be put back as it was: in an item's scope that had none of its
// own (own_in_scope), putting it back drops the copy, and the item reads its for_each's again.
class SavedScopeEntry {
 public:
  SavedScopeEntry(Json& scope, const char* key) : scope_(scope), key_(key) {
    if (auto it = scope.find(key); it != scope.end()) saved_ = *it;
  }
  void restore() {
    if (saved_)
      scope_[key_] = std::move(*saved_);
    else
      scope_.erase(key_);
  }

 private:
  Json& scope_;
  const char* key_;
  std::optional<Json> saved_;
};

}  // namespace

Executor::Executor(const Workflow& workflow, const StepRegistry& registry, Services& services, RandomSource& random,
                   const LogHub& logs, ExecutorOptions options)
    : workflow_(workflow),
      registry_(registry),
      services_(services),
      random_(random),
      logs_(logs),
      options_(std::move(options)),
      run_log_(logs.logger(workflow.name)) {}

void Executor::record(StepRecord r) {
  MutexLock lock(mutex_);
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

RunResult Executor::run(const Json& inputs, CancelToken& cancel, CancelToken& finally_cancel) {
  finally_cancel_ = &finally_cancel;
  const TimePoint started = services_.clock.now();
  Json scope = {
      {"inputs", inputs},
      {"env", Json::object()},
      {"steps", Json::object()},
      {"run", {{"id", options_.run_id}, {"workflow", workflow_.name}, {"status", to_string(RunState::kRunning)}}}};
  // scope["env"] holds only what `env:` blocks set: expressions read any other name from the
  // process's environment (sandbox/expression.cc), and programs inherit it.
  Json secrets = Json::object();
  for (const auto& name : workflow_.secrets)
    if (const char* v = std::getenv(name.c_str())) secrets[name] = v;
  scope["secrets"] = secrets;

  run_log_.info("run " + options_.run_id + ": " + workflow_.name + (options_.dry_run ? " (dry run)" : ""));
  std::string env_error = apply_env(workflow_.env, scope);
  Outcome body = !env_error.empty()      ? Outcome::failed("env of the workflow: " + env_error)
                 : options_.finally_only ? run_owed_finally(workflow_.steps, scope, "")
                                         : run_sequence(workflow_.steps, scope, cancel, "");
  if (!env_error.empty()) run_log_.error(body.error);
  Outcome final_outcome = body;
  if (!workflow_.finally.empty()) final_outcome = run_finally(workflow_.finally, scope, "finally", body);

  RunResult result;
  result.duration = services_.clock.now() - started;
  result.steps = scope["steps"];
  {
    MutexLock lock(mutex_);
    result.records = records_;
  }
  result.error = final_outcome.error;
  switch (final_outcome.state) {
    case StepState::kFailed:
      result.status = RunState::kFailed;
      break;
    case StepState::kCancelled:
      result.status = detaches_on_cancel() && !options_.finally_only ? RunState::kDetached : RunState::kCancelled;
      break;
    case StepState::kPartial:
      result.status = RunState::kPartial;
      break;
    default:
      result.status = RunState::kSucceeded;
      break;
  }
  return result;
}

std::string Executor::apply_env(const Json& env, Json& scope) {
  for (const auto& [name, value] : env.items()) {
    try {
      own_in_scope(scope, "env")[name] = interpolation_text(ExpressionEvaluator(scope).resolve(value));
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
    Outcome o = step.env.empty() ? run_step(step, scope, cancel, path) : run_step_in_env(step, scope, cancel, path);
    result.finally_failed = result.finally_failed || o.finally_failed;
    if (o.is(StepState::kCancelled)) return o;
    if (o.is(StepState::kFailed) && step.continue_on_error) o.state = StepState::kPartial;
    if (o.is(StepState::kFailed)) {
      if (!result.is(StepState::kFailed)) {
        result.state = StepState::kFailed;
        result.error = o.error;
        own_in_scope(scope, "run")["status"] = to_string(StepState::kFailed);  // what failure() and success() read
      }
    } else if (o.is(StepState::kPartial) && result.is(StepState::kSucceeded)) {
      result.state = StepState::kPartial;
    }
  }
  return result;
}

Executor::Outcome Executor::run_step_in_env(const Step& step, Json& scope, CancelToken& cancel,
                                            const std::string& path) {
  // The step's env holds for it and the steps inside it, then the sequence's env is back: an
  // item's scope that had none of its own reads its for_each's again.
  SavedScopeEntry outer_env(scope, "env");
  std::string env_error = apply_env(step.env, scope);
  Outcome o = env_error.empty() ? run_step(step, scope, cancel, path)
                                : Outcome::failed("env of step '" + step.id + "': " + env_error);
  if (!env_error.empty()) logs_.logger(path).error(o.error);
  outer_env.restore();
  return o;
}

bool Executor::runs_after_failure(const Step& step) {
  const std::string& e = step.if_expr;
  for (const char* fn : {"always", "failure", "cancelled"}) {
    for (size_t at = e.find(fn); at != std::string::npos; at = e.find(fn, at + 1)) {
      const size_t end = at + std::strlen(fn);
      const bool starts_word =
          at == 0 || !(std::isalnum(static_cast<unsigned char>(e[at - 1])) || e[at - 1] == '_' || e[at - 1] == '.');
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
  if (body.is(StepState::kCancelled) && detaches_on_cancel()) return body;  // owed, for resume or cancel
  // Finally steps get a token of their own: a cancelled body must still destroy what it created.
  // On the heap: see AttemptRunner::attempt.
  const auto finally_owned = std::make_unique<CancelToken>(*finally_cancel_);
  CancelToken& finally_token = *finally_owned;
  SavedScopeEntry saved_run(scope, "run");
  Json& run = own_in_scope(scope, "run");
  run["status"] = to_string(body.state);
  run["error"] = body.error;
  Outcome o = run_sequence(steps, scope, finally_token, prefix);
  saved_run.restore();
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

// run_step, run_action and the frames under them stay small, the work around a step's run
// out of line: a for_each item waiting in a poller holds them on its parked stack for as long
// as it waits (AttemptRunner::attempt says more).
Executor::Outcome Executor::run_step(const Step& step, Json& scope, CancelToken& cancel, const std::string& path) {
  StepLog log = logs_.logger(path);
  const TimePoint started = services_.clock.now();
  if (std::optional<Outcome> settled = settle_before_running(step, scope, path, log)) return *settled;
  Json outputs = Json::object();
  Outcome o;
  int attempts = 0;
  switch (step.kind) {
    case Step::Kind::kGroup:
      o = run_group(step, scope, cancel, path);
      break;
    case Step::Kind::kForEach:
      o = run_for_each(step, scope, cancel, path, log, outputs);
      break;
    case Step::Kind::kAction:
      o = run_action(step, scope, cancel, path, log, outputs, attempts);
      break;
  }
  finish_step(step, scope, path, log, o, outputs, attempts, started);
  return o;
}

Executor::Outcome Executor::run_group(const Step& step, Json& scope, CancelToken& cancel, const std::string& path) {
  Outcome body = run_sequence(step.steps, scope, cancel, path);
  return run_finally(step.finally, scope, path + ".finally", body);
}

std::optional<Executor::Outcome> Executor::settle_before_running(const Step& step, Json& scope, const std::string& path,
                                                                 const StepLog& log) {
  StepRecord rec;
  rec.path = path;
  rec.type = describe_type(step);
  if (reuse_recorded(step, scope, path, log, rec)) return Outcome{rec.status, {}, false};
  scope["steps"][step.id] = {{"status", to_string(StepState::kRunning)}, {"outputs", Json::object()}};
  if (options_.recorder && step.kind != Step::Kind::kAction) options_.recorder->step_started(path, 0);
  if (step.if_expr.empty()) return std::nullopt;
  bool run_it = false;
  try {
    run_it = ExpressionEvaluator(scope).condition(step.if_expr);  // with or without ${{ }}
  } catch (const ExpressionError& e) {
    if (options_.dry_run && reads_missing_outputs(e)) {
      // It reads outputs of steps a dry run did not run: show what the step would do.
      options_.print(path + ": `if` depends on what a dry run does not know; shown as if true");
      return std::nullopt;
    }
    std::string msg =
        "`if` of step '" + step.id + "' (" + step.loc.file + ":" + std::to_string(step.loc.line) + "): " + e.what();
    log.error(msg);
    rec.status = StepState::kFailed;
    scope["steps"][step.id] = {{"status", to_string(rec.status)},
                               {"outcome", to_string(rec.status)},
                               {"outputs", Json::object()},
                               {"error", msg}};
    rec.error = msg;
    record(rec);
    return Outcome::failed(msg);
  }
  if (run_it) return std::nullopt;
  log.info("skipped: `if: " + step.if_expr + "` is false");
  rec.status = StepState::kSkipped;
  scope["steps"][step.id] = {
      {"status", to_string(rec.status)}, {"outcome", to_string(rec.status)}, {"outputs", Json::object()}};
  if (options_.recorder)
    options_.recorder->step_finished(path, to_string(rec.status), 0, Json::object(), "", "",
                                     Durability::kWithNextWrite);
  record(rec);
  return Outcome::ok();
}

void Executor::finish_step(const Step& step, Json& scope, const std::string& path, const StepLog& log, const Outcome& o,
                           Json& outputs, int attempts, TimePoint started) {
  StepRecord rec;
  rec.path = path;
  rec.type = describe_type(step);
  rec.attempts = attempts;
  rec.duration = services_.clock.now() - started;
  rec.error = o.error;
  rec.status = o.state;
  if (o.is(StepState::kFailed) && step.continue_on_error) log.warn("failed; continuing (continue_on_error)");
  // A cancelled step stays "running" in the journal: it is owed, not finished.
  if (options_.recorder && !o.is(StepState::kCancelled) && !options_.dry_run)
    options_.recorder->step_finished(path, to_string(rec.status), attempts, outputs, "", o.error,
                                     side_effect_free(step) ? Durability::kWithNextWrite : Durability::kNow);
  // Moved, not copied, once recorded: a for_each's outputs at 10,000 items are MiBs of JSON nodes.
  // `outcome` is GitHub Actions' name for the same thing; both are offered.
  Json done = {{"status", to_string(rec.status)}, {"outcome", to_string(rec.status)}};
  done["outputs"] = std::move(outputs);
  if (!o.error.empty()) done["error"] = o.error;
  scope["steps"][step.id] = std::move(done);
  record(std::move(rec));
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

Executor::Outcome Executor::run_owed_finally(const std::vector<Step>& steps, Json& scope, const std::string& prefix) {
  if (!options_.recorder) return Outcome::cancelled("cancelled");
  const Outcome cancelled = Outcome::cancelled("cancelled by flowrun cancel");
  Outcome result = cancelled;
  // Finally steps owed by a group or an item that fail make the cancel fail: named, not lost.
  auto note = [&result](const Outcome& o) {
    if (o.is(StepState::kFailed) && !result.is(StepState::kFailed)) result = o;
  };
  for (const auto& step : steps) {
    std::string path = prefix.empty() ? step.id : prefix + "." + step.id;
    if (!options_.recorder->started_under(path)) continue;  // never started: nothing is owed
    if (step.kind == Step::Kind::kAction) {
      load_recorded({step}, scope, prefix);
    } else if (step.kind == Step::Kind::kGroup) {
      note(run_owed_finally(step.steps, scope, path));
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
        std::string item_path = for_each_item_path(path, i);
        if (!options_.recorder->started_under(item_path)) continue;
        Json item_scope = for_each_item_scope(step, scope, items, i);
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
    options_.print("    " + key + ": " +
                   services_.redactor.redact(value.is_string() ? value.get<std::string>() : dump_json(value)));
  return shown;
}

Executor::Outcome Executor::run_action(const Step& step, Json& scope, CancelToken& cancel, const std::string& path,
                                       const StepLog& log, Json& outputs, int& attempts) {
  const StepType* type = type_of(step);
  if (!type) return Outcome::failed("step type '" + step.type + "' is not registered");
  Json with;
  if (std::optional<Outcome> settled = resolve_with(step, *type, scope, path, log, with)) return *settled;
  // On the heap: a waiting item's parked stack holds this frame (see run_step).
  const auto env = std::make_unique<AttemptRunner::Env>(
      AttemptRunner::Env{workflow_, services_, random_, options_.recorder, options_.run_id});
  const auto runner = std::make_unique<AttemptRunner>(
      *env, step, *type, with, path, describe_type(step), log,
      [this](const std::vector<Step>& steps, Json& nested_scope, CancelToken& nested_cancel,
             const std::string& nested_path) { return run_sequence(steps, nested_scope, nested_cancel, nested_path); });
  return runner->run(scope, cancel, outputs, attempts);
}

std::optional<Executor::Outcome> Executor::resolve_with(const Step& step, const StepType& type, Json& scope,
                                                        const std::string& path, const StepLog& log, Json& with) {
  if (options_.dry_run) {
    dry_run_action(step, scope, path);
    // It would act: not run. Its outputs stay empty, so what later steps read from them is
    // shown as written.
    if (type.info().side_effects) return Outcome::ok();
  }
  try {
    with = ExpressionEvaluator(scope).resolve(step.with);
    return std::nullopt;
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
}

Executor::Outcome Executor::run_for_each(const Step& step, Json& scope, CancelToken& cancel, const std::string& path,
                                         const StepLog& log, Json& outputs) {
  auto run_item = [this, &step](Json& item_scope, CancelToken& item_cancel, const std::string& item_path) {
    Outcome body = run_sequence(step.steps, item_scope, item_cancel, item_path);
    return run_finally(step.finally, item_scope, item_path + ".finally", body);
  };
  ForEachRunner runner(step, path, log, services_.clock, {options_.dry_run, &options_.print}, run_item,
                       options_.dry_run ? nullptr : options_.recorder);
  return runner.run(scope, cancel, outputs);
}

}  // namespace flowrun
