#include "engine/step_api/poll_loop.h"

#include <algorithm>

#include "engine/io/curl_multi.h"
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

namespace {

// The state of one run_poll_loop, and its steps out of line: a for_each item waiting here holds
// run_poll_loop's frame on its parked stack for as long as it waits, so the frame holds only
// what lives across the wait.
class PollLoop {
 public:
  PollLoop(Poller& poller, StepContext& ctx, const PollSettings& settings)
      : poller_(poller), ctx_(ctx), settings_(settings), clock_(ctx.clock()), started_(clock_.now()) {
    if (settings.timeout) deadline_ = started_ + *settings.timeout;
    if (ctx.deadline() && (!deadline_ || *ctx.deadline() < *deadline_)) deadline_ = ctx.deadline();
    last_heartbeat_ = started_;
  }

  // One poll: its outputs once `threshold` polls in a row were done, else how long to wait for
  // the next. Throws as run_poll_loop does.
  [[gnu::noinline]] std::optional<Json> poll_once(Duration& wait) {
    if (ctx_.cancel().cancelled()) throw StepError::cancelled(ctx_.cancel().reason());
    if (deadline_ && clock_.now() >= *deadline_)
      throw StepError::timeout("no result after " + format_duration(clock_.now() - started_) + " of polling (" +
                               std::to_string(polls_) + " checks)");
    wait = settings_.interval;
    const TimePoint poll_started = clock_.now();
    bool answered = false;
    try {
      ++polls_;
      PollResult r = poller_.poll(ctx_);
      answered = true;
      report_poll(ctx_, clock_.now() - poll_started, true);
      if (probe_failures_ > 0)
        ctx_.log().info("probe recovered after " + std::to_string(probe_failures_) + " failed checks");
      probe_failures_ = 0;
      if (r.status == PollStatus::kFailed)
        throw StepError::permanent(r.message.empty() ? "the poller reported failure" : r.message)
            .with_outputs(std::move(r.outputs));
      if (r.status == PollStatus::kDone) {
        if (++consecutive_done_ >= settings_.threshold) return std::move(r.outputs);
        ctx_.log().debug("done " + std::to_string(consecutive_done_) + "/" + std::to_string(settings_.threshold));
      } else {
        consecutive_done_ = 0;
      }
    } catch (const StepError& e) {
      if (!answered && !ctx_.cancel().cancelled()) report_poll(ctx_, clock_.now() - poll_started, false);
      bool probe_trouble = e.kind() == ErrorKind::kTransient || e.kind() == ErrorKind::kTimeout;
      if (!probe_trouble || ctx_.cancel().cancelled()) throw;
      ++probe_failures_;
      consecutive_done_ = 0;
      wait = std::max(backoff_for(settings_, probe_failures_), e.retry_after().value_or(Duration::zero()));
      ctx_.log().warn("probe failed (" + std::to_string(probe_failures_) + " in a row, " + e.kind_name() +
                      "): " + e.what() + "; next check in " + format_duration(wait));
    }
    TimePoint now = clock_.now();
    if (now - last_heartbeat_ >= settings_.heartbeat) {
      ctx_.log().info("still waiting: " + format_duration(now - started_) + " elapsed, " + std::to_string(polls_) +
                      " checks" + (deadline_ ? ", " + format_duration(*deadline_ - now) + " left" : ""));
      last_heartbeat_ = now;
    }
    if (deadline_) wait = std::min(wait, std::max(Duration::zero(), *deadline_ - now));
    return std::nullopt;
  }

 private:
  Poller& poller_;
  StepContext& ctx_;
  const PollSettings& settings_;
  Clock& clock_;
  const TimePoint started_;
  std::optional<TimePoint> deadline_;
  int consecutive_done_ = 0;
  int probe_failures_ = 0;
  long polls_ = 0;
  TimePoint last_heartbeat_;
};

}  // namespace

Json run_poll_loop(Poller& poller, StepContext& ctx, const PollSettings& settings) {
  PollLoop loop(poller, ctx, settings);
  for (;;) {
    Duration wait{};
    wait_for_transfer_room();  // here, where the frames are shallow (curl_multi.h)
    if (std::optional<Json> outputs = loop.poll_once(wait)) return std::move(*outputs);
    if (!ctx.clock().sleep_for(wait, ctx.cancel())) throw StepError::cancelled(ctx.cancel().reason());
  }
}

}  // namespace flowrun
