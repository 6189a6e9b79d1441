#include "engine/runtime/executor.h"

#include <algorithm>
#include <cstring>

#include "engine/sandbox/expression.h"
#include "engine/runtime/dry_run.h"
#include "engine/runtime/for_each_runner.h"
#include "engine/load/inputs.h"
#include "engine/io/json_parse.h"
#include "engine/io/output_limit.h"
#include "engine/step_api/poll_loop.h"
#include "engine/io/retry_policy.h"
#include "engine/io/step_error.h"
#include "engine/step_api/step_registry.h"
#include "engine/io/utf8.h"

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
    case StepState::kFailed: result.status = RunState::kFailed; break;
    case StepState::kCancelled:
      result.status = options_.detach_on_cancel && !options_.finally_only ? RunState::kDetached : RunState::kCancelled;
      break;
    case StepState::kPartial: result.status = RunState::kPartial; break;
    default: result.status = RunState::kSucceeded; break;
  }
  return result;
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

std::string Executor::unset_secrets_hint(const Step& step, const Json& scope, const StepError& error) const {
  const bool refused = error.http_status() == 401 || error.http_status() == 403;
  const std::string message = error.what();
  std::string names;
  for (const auto& [key, value] : step.with.items()) {
    // The parameter the error names, or any when the server refused the credentials.
    if (!refused && message.find(key) == std::string::npos) continue;
    const std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
    for (const auto& name : workflow_.secrets)
      if (!scope["secrets"].contains(name) && text.find("secrets." + name) != std::string::npos &&
          names.find(name) == std::string::npos)
        names += (names.empty() ? "" : ", ") + name;
  }
  return names.empty() ? "" : " (not set in the environment: " + names + ")";
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
  // Finally steps get a token of their own: a cancelled body must still destroy what it created.
  CancelToken finally_token(*finally_cancel_);
  Json saved_run = scope["run"];
  scope["run"]["status"] = to_string(body.state);
  scope["run"]["error"] = body.error;
  Outcome o = run_sequence(steps, scope, finally_token, prefix);
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
    ctx.env = &scope["env"];
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
      if (o.is(StepState::kCancelled)) throw StepError::cancelled(o.error);
      if (o.is(StepState::kFailed)) throw StepError::permanent(list + " failed: " + o.error);
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
      make_valid_utf8(outputs);  // outside text is bytes until here: later steps and the journal need UTF-8
      check_output_size(outputs, step.max_output.value_or(kDefaultMaxOutput));
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
      // The last attempt's findings stay with the failed step (bounded like any outputs).
      if (error.outputs().is_object()) {
        outputs = error.outputs();
        make_valid_utf8(outputs);
        if (json_size_within(outputs, step.max_output.value_or(kDefaultMaxOutput)) > step.max_output.value_or(kDefaultMaxOutput))
          outputs = Json::object();
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
        // The error once, with its kind; how the retries ended only when there were any.
        std::string msg = std::string(error.what()) + " (" + error.kind_name() + ")";
        if (attempts > 1) msg += "; gave up after " + std::to_string(attempts) + " attempts";
        if (decision.reason.rfind("attempts exhausted", 0) != 0 && decision.reason.rfind("error kind", 0) != 0)
          msg += (attempts > 1 ? ": " : "; not retried: ") + decision.reason;
        // Named only when the step fails for want of it: a run that never needs an unset
        // secret hears nothing of it.
        msg += unset_secrets_hint(step, scope, error);
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
  auto run_item = [this, &step](Json& item_scope, CancelToken& item_cancel, const std::string& item_path) {
    Outcome body = run_sequence(step.steps, item_scope, item_cancel, item_path);
    return run_finally(step.finally, item_scope, item_path + ".finally", body);
  };
  ForEachRunner runner(step, path, log, {options_.dry_run, &options_.print}, run_item);
  return runner.run(scope, cancel, outputs);
}

}  // namespace flowrun
