#include "engine/runtime/attempt_runner.h"

#include <algorithm>

#include "engine/io/output_limit.h"
#include "engine/io/retry.h"
#include "engine/io/step_error.h"
#include "engine/io/utf8.h"
#include "engine/sandbox/expression.h"
#include "engine/step_api/poll_loop.h"

namespace flowrun {

AttemptRunner::AttemptRunner(const Env& env, const Step& step, const StepType& type, const Json& with,
                             const std::string& path, std::string described_as, const StepLog& log,
                             RunNested run_nested)
    : env_(env),
      step_(step),
      type_(type),
      with_(with),
      path_(path),
      described_as_(std::move(described_as)),
      log_(log),
      run_nested_(std::move(run_nested)) {}

Outcome AttemptRunner::run(Json& scope, CancelToken& cancel, Json& outputs, int& attempts) {
  const RetryOptions options = begin();
  attempts = 1;  // the attempt about to begin, even when a cancellation stops it first
  try {
    return retry(
        *policies_.retry, env_.services.clock, cancel, step_deadline_,
        [&](int number) {
          attempts = number;
          return attempt(number, scope, cancel, outputs);
        },
        [&](const FailedAttempt& f) {
          on_failure(f, scope);
          if (f.decision.retry) attempts = f.attempt + 1;
        },
        options);
  } catch (const StepError& e) {
    if (give_up_) return Outcome::failed(*give_up_);
    // Cancelled: before an attempt, during one (logged there) or while waiting for the next.
    return Outcome::cancelled(e.what());
  }
}

RetryOptions AttemptRunner::begin() {
  policies_ = effective_policies(step_, env_.workflow);
  Clock& clock = env_.services.clock;
  started_ = clock.now();
  if (env_.recorder) {
    // A resumed step keeps the deadline of its first start, in an earlier process.
    if (auto earlier = env_.recorder->recorded(path_); earlier && earlier->started_ms > 0) {
      const int64_t now_ms = clock.wall_now().time_since_epoch().count();
      started_ -= Duration(std::max<int64_t>(0, now_ms - earlier->started_ms));
    }
  }
  if (policies_.timeout) step_deadline_ = started_ + *policies_.timeout;
  RetryOptions options;
  options.random = &env_.random;
  options.started = started_;
  options.deadline_reason = "the step timeout leaves no time for another attempt";
  return options;
}

// attempt() stays small and the work around the step's own run lives in the functions below,
// kept out of line: a for_each item waiting in a poller holds attempt()'s frame, and the frames
// above it, for as long as it waits (about 3.6 KiB, kept encoded while it sleeps: the fewer
// bytes, the less a waiting item costs).
Outcome AttemptRunner::attempt(int number, Json& scope, CancelToken& cancel, Json& outputs) {
  const std::optional<TimePoint> deadline = attempt_deadline();  // from before the journal's write
  // On the heap, as every token a sleeping step descends from: a cancel from another thread
  // walks the tokens while the fiber's stack may be saved (FiberScheduler::sleep_until).
  const auto attempt_token = std::make_unique<CancelToken>(cancel);
  CancelToken& attempt_cancel = *attempt_token;
  // A side-effect-free step owes nothing if a crash cuts it short: its start is not recorded.
  if (env_.recorder && type_.info().side_effects) env_.recorder->step_started(path_, number);
  // On the heap, as the runner is: it would be a third of this frame.
  const auto ctx =
      std::make_unique<StepContext>(step_, with_, path_, number, env_.services, attempt_cancel, deadline, log_);
  ctx->run_id = env_.run_id;
  ctx->env = find_in_scope(scope, "env");
  int nested_runs = 0;
  ctx->run_nested = [&](const std::string& list, const Json& extra) {
    return run_nested_list(list, extra, scope, attempt_cancel, ++nested_runs);
  };
  try {
    outputs = perform(*ctx, number);
    accept_outputs(outputs, number);
    return Outcome::ok();
  } catch (const std::exception& raw) {
    return failed_attempt(raw, number, cancel, outputs);
  }
}

std::optional<TimePoint> AttemptRunner::attempt_deadline() const {
  std::optional<TimePoint> deadline = step_deadline_;
  if (policies_.attempt_timeout) {
    TimePoint t = env_.services.clock.now() + *policies_.attempt_timeout;
    if (!deadline || t < *deadline) deadline = t;
  }
  return deadline;
}

Json AttemptRunner::run_nested_list(const std::string& list, const Json& extra, Json& scope, CancelToken& cancel,
                                    int run) {
  auto it = step_.nested.find(list);
  if (it == step_.nested.end()) return Json::object();
  Json nested_scope = scope;
  for (const auto& [k, v] : extra.items()) nested_scope[k] = v;
  // Each run is its own action ("supervise.on_stall#2.restart"), never reused by a resume.
  std::string nested_path = path_ + "." + list + "#" + std::to_string(run);
  Outcome o = run_nested_(it->second, nested_scope, cancel, nested_path);
  Json out = Json::object();
  for (const auto& s : it->second) {
    out[s.id] = nested_scope["steps"][s.id];
    scope["steps"][s.id] = out[s.id];  // later steps see what the nested steps produced
  }
  if (o.is(StepState::kCancelled)) throw StepError::cancelled(o.error);
  if (o.is(StepState::kFailed)) throw StepError::permanent(list + " failed: " + o.error);
  return out;
}

Json AttemptRunner::perform(StepContext& ctx, int number) {
  if (number == 1) log_.debug("starting (" + described_as_ + ")");
  if (!type_.info().poller) return type_.run(ctx);
  const PollSettings settings = poll_settings(type_.info(), with_);
  auto poller = type_.start_polling(ctx);
  return run_poll_loop(*poller, ctx, settings);
}

void AttemptRunner::accept_outputs(Json& outputs, int number) const {
  if (!outputs.is_object()) outputs = Json{{"result", outputs}};
  make_valid_utf8(outputs);  // outside text is bytes until here: later steps and the journal need UTF-8
  check_output_size(outputs, step_.max_output.value_or(kDefaultMaxOutput));
  Duration took = env_.services.clock.now() - started_;
  if (number > 1)
    log_.info("succeeded on attempt " + std::to_string(number) + "/" + std::to_string(policies_.retry->attempts) +
              " after " + format_duration(took));
  else
    log_.debug("succeeded in " + format_duration(took));
}

Outcome AttemptRunner::failed_attempt(const std::exception& raw, int number, const CancelToken& cancel, Json& outputs) {
  const auto* se = dynamic_cast<const StepError*>(&raw);
  StepError error = se ? *se : StepError::permanent(std::string("internal error: ") + raw.what());
  if (cancel.cancelled() || error.kind() == ErrorKind::kCancelled) {
    log_.warn("cancelled: " + std::string(error.what()));
    throw error;  // never retried
  }
  TimePoint now = env_.services.clock.now();
  if (step_deadline_ && now >= *step_deadline_) {
    std::string msg = "timed out after " + format_duration(now - started_) + " (timeout " +
                      format_duration(*policies_.timeout) + ", " + std::to_string(number) +
                      (number == 1 ? " attempt" : " attempts") + "): " + error.what();
    log_.error(msg);
    if (env_.recorder)
      env_.recorder->event(path_, "timeout", msg, Json{{"error_kind", "timeout"}, {"type", step_.type}});
    return Outcome::failed(msg);
  }
  // The last attempt's findings stay with the failed step (bounded like any outputs).
  if (error.outputs().is_object()) {
    const size_t max_output = step_.max_output.value_or(kDefaultMaxOutput);
    outputs = error.outputs();
    make_valid_utf8(outputs);
    if (json_size_within(outputs, max_output) > max_output) outputs = Json::object();
  }
  throw error;
}

void AttemptRunner::on_failure(const FailedAttempt& failed, const Json& scope) {
  const int number = failed.attempt;
  const StepError& error = failed.error;
  const bool retry = failed.decision.retry;
  const std::string& reason = failed.decision.reason;
  std::string head = "attempt " + std::to_string(number) + "/" + std::to_string(policies_.retry->attempts) +
                     " failed (" + error.kind_name() + "): " + error.what();
  if (env_.recorder)
    env_.recorder->event(path_, retry ? "retry" : "failed", head,
                         Json{{"error_kind", error.kind_name()}, {"type", step_.type}});
  if (!retry) {
    // The error once, with its kind; how the retries ended only when there were any.
    std::string msg = std::string(error.what()) + " (" + error.kind_name() + ")";
    if (number > 1) msg += "; gave up after " + std::to_string(number) + " attempts";
    if (reason.rfind("attempts exhausted", 0) != 0 && reason.rfind("error kind", 0) != 0)
      msg += (number > 1 ? ": " : "; not retried: ") + reason;
    // Named only when the step fails for want of it: a run that never needs an unset secret
    // hears nothing of it.
    msg += unset_secrets_hint(scope, error);
    log_.error(msg);
    give_up_ = msg;
    return;
  }
  log_.warn(head + "; retrying in " + format_duration(failed.decision.delay) +
            (error.retry_after() ? " (server's Retry-After)" : ""));
}

std::string AttemptRunner::unset_secrets_hint(const Json& scope, const StepError& error) const {
  const bool refused = error.http_status() == 401 || error.http_status() == 403;
  const std::string message = error.what();
  std::string names;
  const Json* secrets = find_in_scope(scope, "secrets");
  for (const auto& [key, value] : step_.with.items()) {
    // The parameter the error names, or any when the server refused the credentials.
    if (!refused && message.find(key) == std::string::npos) continue;
    const std::string text = dump_json(value);
    for (const auto& name : env_.workflow.secrets)
      if (!(secrets && secrets->contains(name)) && text.find("secrets." + name) != std::string::npos &&
          names.find(name) == std::string::npos)
        names += (names.empty() ? "" : ", ") + name;
  }
  return names.empty() ? "" : " (not set in the environment: " + names + ")";
}

}  // namespace flowrun
