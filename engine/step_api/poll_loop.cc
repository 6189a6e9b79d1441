#include "engine/step_api/poll_loop.h"

#include <algorithm>

#include "engine/io/step_error.h"
#include "engine/step_api/execution_recorder.h"
#include "engine/step_api/step_context.h"

namespace flowrun {

PollSettings poll_settings(const StepInfo& info, const Json& with) {
  PollSettings s;
  s.interval = info.default_interval;
  s.timeout = info.default_timeout;
  auto read = [&](const char* key) -> std::optional<Duration> {
    if (!with.contains(key) || with[key].is_null()) return std::nullopt;
    auto d = json_to_duration(with[key]);
    if (!d) throw StepError::permanent(std::string("'") + key + "' is not a duration: " + with[key].dump());
    return d;
  };
  if (auto d = read("interval")) s.interval = std::max(*d, Duration(1));
  if (auto d = read("timeout")) s.timeout = d;
  if (auto d = read("backoff_first")) s.backoff_first = std::max(*d, Duration(1));
  if (auto d = read("backoff_max")) s.backoff_max = std::max(*d, Duration(1));
  if (!info.own_threshold && with.contains("threshold") && !with["threshold"].is_null()) {
    if (!with["threshold"].is_number_integer() || with["threshold"].get<int>() < 1)
      throw StepError::permanent("'threshold' must be a whole number of at least 1");
    s.threshold = with["threshold"].get<int>();
  }
  return s;
}

Duration probe_backoff(Duration interval, int failures) {
  Duration cap = std::max(interval, std::min(interval * 16, Duration(std::chrono::minutes(10))));
  Duration d = interval;
  for (int i = 1; i < failures && d < cap; ++i) d *= 2;
  return std::min(d, cap);
}

Duration probe_backoff(Duration first, Duration cap, int failures) {
  cap = std::max(cap, first);
  Duration d = first;
  for (int i = 1; i < failures && d < cap; ++i) d *= 2;
  return std::min(d, cap);
}

namespace {

Duration backoff_for(const PollSettings& s, int failures) {
  if (!s.backoff_first && !s.backoff_max) return probe_backoff(s.interval, failures);
  const Duration first = s.backoff_first.value_or(s.interval);
  return probe_backoff(first, s.backoff_max.value_or(probe_backoff(first, 100)), failures);
}

// One poll's latency to the recorder (metrics), answered or not.
void report_poll(StepContext& ctx, Duration latency, bool answered) {
  if (ctx.services().recorder) ctx.services().recorder->polled(ctx.path(), latency, answered);
}

}  // namespace

Json run_poll_loop(Poller& poller, StepContext& ctx, const PollSettings& settings) {
  Clock& clock = ctx.clock();
  const TimePoint started = clock.now();
  std::optional<TimePoint> deadline;
  if (settings.timeout) deadline = started + *settings.timeout;
  if (ctx.deadline() && (!deadline || *ctx.deadline() < *deadline)) deadline = ctx.deadline();

  int consecutive_done = 0;
  int probe_failures = 0;
  long polls = 0;
  TimePoint last_heartbeat = started;
  for (;;) {
    if (ctx.cancel().cancelled()) throw StepError::cancelled(ctx.cancel().reason());
    if (deadline && clock.now() >= *deadline)
      throw StepError::timeout("no result after " + format_duration(clock.now() - started) + " of polling (" +
                               std::to_string(polls) + " checks)");
    Duration wait = settings.interval;
    const TimePoint poll_started = clock.now();
    bool answered = false;
    try {
      ++polls;
      PollResult r = poller.poll(ctx);
      answered = true;
      report_poll(ctx, clock.now() - poll_started, true);
      if (probe_failures > 0)
        ctx.log().info("probe recovered after " + std::to_string(probe_failures) + " failed checks");
      probe_failures = 0;
      if (r.status == PollStatus::kFailed)
        throw StepError::permanent(r.message.empty() ? "the poller reported failure" : r.message)
            .with_outputs(std::move(r.outputs));
      if (r.status == PollStatus::kDone) {
        if (++consecutive_done >= settings.threshold) return r.outputs;
        ctx.log().debug("done " + std::to_string(consecutive_done) + "/" + std::to_string(settings.threshold));
      } else {
        consecutive_done = 0;
      }
    } catch (const StepError& e) {
      if (!answered && !ctx.cancel().cancelled()) report_poll(ctx, clock.now() - poll_started, false);
      bool probe_trouble = e.kind() == ErrorKind::kTransient || e.kind() == ErrorKind::kTimeout;
      if (!probe_trouble || ctx.cancel().cancelled()) throw;
      ++probe_failures;
      consecutive_done = 0;
      wait = std::max(backoff_for(settings, probe_failures), e.retry_after().value_or(Duration::zero()));
      ctx.log().warn("probe failed (" + std::to_string(probe_failures) + " in a row, " + e.kind_name() +
                     "): " + e.what() + "; next check in " + format_duration(wait));
    }
    TimePoint now = clock.now();
    if (now - last_heartbeat >= settings.heartbeat) {
      ctx.log().info("still waiting: " + format_duration(now - started) + " elapsed, " + std::to_string(polls) +
                     " checks" + (deadline ? ", " + format_duration(*deadline - now) + " left" : ""));
      last_heartbeat = now;
    }
    if (deadline) wait = std::min(wait, std::max(Duration::zero(), *deadline - now));
    if (!clock.sleep_for(wait, ctx.cancel())) throw StepError::cancelled(ctx.cancel().reason());
  }
}

}  // namespace flowrun
