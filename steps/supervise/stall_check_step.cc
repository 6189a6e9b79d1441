// `stall-check`: watch a pipeline through a probe; when it has looked stalled for `threshold`
// checks in a row, run the `on_stall` steps (restart), the `health_check`, then the `on_healthy`
// steps (requeue) and start counting again; end when `done` holds. `max_recoveries: {count, per}`
// stops a restart loop: restarting that does not help is a failure someone must look at, not
// something to repeat all night. A probe that does not answer is an outage of the status
// endpoint, never a stall: a restart does not fix an API or broker outage.
#include <algorithm>
#include <cstdio>
#include <deque>

#include "engine/io/json_text.h"
#include "engine/io/step_error.h"
#include "engine/io/utf8.h"
#include "engine/step_api/expressions.h"
#include "engine/step_api/step_context.h"
#include "engine/step_api/step_signals.h"
#include "steps/supervise/health_check.h"
#include "steps/supervise/probe.h"
#include "steps/supervise/supervise_steps.h"

namespace flowrun {
namespace {

std::string number_text(const Json& v) { return v.is_number() ? interpolation_text(v) : "?"; }

// "Progress: 40000/59185 (67.6%) | Processing: 32 | Pending: 19185 | 310/min, ETA 1h02m"
std::string progress_line(const Json& obs, std::optional<double> per_minute) {
  std::string line;
  if (obs.contains("completed") && obs.contains("total") && obs["completed"].is_number() && obs["total"].is_number()) {
    double done = obs["completed"].get<double>(), total = obs["total"].get<double>();
    char pct[32] = "";
    if (total > 0) std::snprintf(pct, sizeof pct, " (%.1f%%)", 100.0 * done / total);
    line = "Progress: " + number_text(obs["completed"]) + "/" + number_text(obs["total"]) + pct;
    if (per_minute && *per_minute > 0) {
      char rate[64];
      std::snprintf(rate, sizeof rate, " | %.0f/min, ETA ", *per_minute);
      const double eta_ms = std::min((total - done) / *per_minute * 60000.0, 1e13);  // ~300 years at most
      auto eta = Duration(static_cast<Duration::rep>(std::max(eta_ms, 0.0)));
      line += rate + (eta < std::chrono::seconds(1)
                          ? std::string("<1s")
                          : format_duration(std::chrono::duration_cast<std::chrono::seconds>(eta)));
    }
  }
  for (const char* field : {"processing", "pending", "failed"}) {
    if (!obs.contains(field)) continue;
    std::string name = field;
    name[0] = static_cast<char>(std::toupper(name[0]));
    line += (line.empty() ? "" : " | ") + name + ": " + number_text(obs[field]);
  }
  return line.empty() ? dump_json(obs) : line;
}

struct RecoveryGuard {
  int count = 0;  // 0: no limit
  Duration per = std::chrono::hours(1);
};

std::string seconds_text(double s) {
  return format_duration(Duration(static_cast<Duration::rep>(std::max(0.0, s) * 1000.0)));
}

// Recovery times (stall detected to moving again), in seconds.
Json recovery_summary(std::vector<double> times) {
  if (times.empty()) return Json{{"count", 0}, {"min", nullptr}, {"median", nullptr}, {"max", nullptr}};
  std::sort(times.begin(), times.end());
  const size_t n = times.size();
  double median = n % 2 ? times[n / 2] : (times[n / 2 - 1] + times[n / 2]) / 2;
  return Json{{"count", n}, {"min", times.front()}, {"median", median}, {"max", times.back()}};
}

class StallPoller final : public Poller {
 public:
  explicit StallPoller(StepContext& ctx) : log_(ctx.log()) {
    const Json& with = ctx.with();
    probe_ = with.value("probe", Json());
    endpoint_ = probe_.contains("http") ? "status endpoint" : "status probe";
    stalled_ = ctx.string_param("stalled");
    done_ = ctx.string_param("done");
    threshold_ = std::max(1, ctx.int_param("threshold", 3));
    health_ = with.value("health_check", Json());
    const Json guard = with.value("max_recoveries", Json());
    if (guard.is_number()) guard_.count = guard.get<int>();
    if (guard.is_object()) {
      guard_.count = guard.value("count", 0);
      if (auto per = json_to_duration(guard.value("per", Json("1h")))) guard_.per = *per;
    }
  }

  // Whatever ended the step (done, the loop guard, a timeout, cancellation), the end report.
  ~StallPoller() override {
    try {
      log_.info(report());
    } catch (...) {  // a report is not worth a crash while unwinding
    }
  }

  PollResult poll(StepContext& ctx) override {
    Json obs = observe(ctx);
    TimePoint now = ctx.clock().now();
    ++checks_;
    ctx.log().info(progress_line(obs, rate(obs, now)));

    const bool done = !done_.empty() && holds(done_, obs);
    const bool stalled = !done && holds(stalled_, obs);
    if (!stalled) close_recovery(ctx, now);
    if (done) return {PollStatus::kDone, outputs(obs), ""};
    if (!stalled) {
      if (stalls_ > 0) ctx.log().info("moving again after " + std::to_string(stalls_) + " stalled check(s)");
      stalls_ = 0;
      return {};
    }
    ++stalls_;
    if (stalls_ < threshold_) {
      ctx.log().warn("looks stalled (" + std::to_string(stalls_) + "/" + std::to_string(threshold_) + "): " + stalled_);
      return {};
    }
    ++stalls_detected_;
    if (!stalled_since_) stalled_since_ = now;
    prune(now);
    if (guard_.count > 0 && static_cast<int>(recoveries_at_.size()) >= guard_.count)
      return restart_loop(ctx, obs,
                          "restart loop: stalled again after " + std::to_string(recoveries_at_.size()) +
                              " recoveries within " + format_duration(guard_.per) + " (max_recoveries " +
                              std::to_string(guard_.count) +
                              "): the on_stall steps are not helping; last check: " + progress_line(obs, std::nullopt));
    recoveries_at_.push_back(now);
    ++recoveries_;
    report_event(ctx, "stalled",
                 "stalled for " + std::to_string(stalls_) + " checks in a row (" + stalled_ + "); running on_stall",
                 {{"stalls", stalls_}, {"recovery", recoveries_}, {"last_check", progress_line(obs, std::nullopt)}});
    ctx.log().warn("stalled for " + std::to_string(stalls_) + " checks in a row; running on_stall (recovery " +
                   std::to_string(recoveries_) + ")");
    stalls_ = 0;
    const Json scope = {{"observation", obs}, {"recoveries", recoveries_}};
    ctx.run_nested("on_stall", scope);
    if (health_check_configured(health_)) {
      HealthCheckResult h = run_health_check(health_, probe_, ctx);
      // The health probe is the status probe: what it saw counts as a check of the pipeline.
      if (h.observation.is_object() && !health_.contains("probe") && !holds(stalled_, h.observation))
        close_recovery(ctx, ctx.clock().now());
      if (!h.healthy) {
        ++failed_health_checks_;
        prune(ctx.clock().now());
        const std::string guard_text = guard_.count > 0
                                           ? std::to_string(recoveries_at_.size()) + " of max_recoveries " +
                                                 std::to_string(guard_.count) + " within " + format_duration(guard_.per)
                                           : "no max_recoveries";
        if (guard_.count > 0 && static_cast<int>(recoveries_at_.size()) >= guard_.count)
          return restart_loop(ctx, obs,
                              "restart loop: not healthy after " + std::to_string(recoveries_at_.size()) +
                                  " recoveries within " + format_duration(guard_.per) + " (max_recoveries " +
                                  std::to_string(guard_.count) + "): health check failed: " + h.detail);
        ctx.log().warn("health check failed after recovery " + std::to_string(recoveries_) + ": " + h.detail +
                       "; on_healthy skipped this time (" + guard_text + ")");
        return {};
      }
      ctx.log().info("healthy after recovery " + std::to_string(recoveries_) +
                     (h.detail.empty() ? "" : ": " + h.detail));
    }
    ctx.run_nested("on_healthy", scope);
    return {};
  }

 private:
  // One probe. A probe that does not answer (transient or timeout) is an outage: reported with
  // its length and rethrown for the poll loop to back off, and never counted as a stall.
  Json observe(StepContext& ctx) {
    try {
      Json obs = run_probe(probe_, ctx);
      if (down_since_) {
        const Duration down = ctx.clock().now() - *down_since_;
        ctx.log().info(endpoint_ + " back after " + format_duration(down) + " (" + std::to_string(down_probes_) +
                       " failed probes); counting stalled checks from zero");
        longest_outage_ = std::max(longest_outage_, down);
        down_since_.reset();
        down_probes_ = 0;
      }
      return obs;
    } catch (const StepError& e) {
      if ((e.kind() != ErrorKind::kTransient && e.kind() != ErrorKind::kTimeout) || ctx.cancel().cancelled()) throw;
      if (ctx.remaining() && *ctx.remaining() <= Duration::zero()) throw;
      const TimePoint now = ctx.clock().now();
      if (!down_since_) {
        down_since_ = now;
        ++outages_;
      }
      ++down_probes_;
      ++failed_probes_;
      stalls_ = 0;  // stalled checks on both sides of an outage are not "in a row"
      std::string msg = endpoint_ + " down" +
                        (down_probes_ == 1 ? ", 1 failed probe"
                                           : " for " + format_duration(now - *down_since_) + ", " +
                                                 std::to_string(down_probes_) + " failed probes") +
                        " (" + e.what() + "); not restarting: a restart does not fix an API or broker outage";
      if (e.http_status() > 0) throw StepError::http(e.http_status(), msg, e.retry_after());
      throw StepError(e.kind(), msg).with_retry_after(e.retry_after());
    }
  }

  void prune(TimePoint now) {
    while (!recoveries_at_.empty() && now - recoveries_at_.front() >= guard_.per) recoveries_at_.pop_front();
  }

  // The stall that a recovery started from is over: the pipeline moves (or is done) again.
  void close_recovery(const StepContext& ctx, TimePoint now) {
    if (!stalled_since_) return;
    const double after_s = std::chrono::duration<double>(now - *stalled_since_).count();
    recovery_times_.push_back(after_s);
    stalled_since_.reset();
    report_event(ctx, "recovered", "moving again " + seconds_text(after_s) + " after the stall",
                 {{"after_s", after_s}, {"recoveries", recoveries_}});
  }

  // Gives up: restarting does not help. The end of the step, and an event for whoever is away.
  PollResult restart_loop(const StepContext& ctx, const Json& obs, const std::string& message) {
    report_event(ctx, "restart_loop", message,
                 {{"recoveries", recoveries_at_.size()},
                  {"max_recoveries", guard_.count},
                  {"per_s", std::chrono::duration<double>(guard_.per).count()}});
    return {PollStatus::kFailed, outputs(obs), message};
  }

  // Conditions are expressions over the probe's fields: "processing == 0 and pending > 0".
  static bool holds(const std::string& condition, const Json& obs) {
    return probe_condition(condition, obs, "condition `" + condition + "` on " + dump_json(obs));
  }

  // Items completed per minute since the first check, when the probe reports `completed`.
  std::optional<double> rate(const Json& obs, TimePoint now) {
    if (!obs.contains("completed") || !obs["completed"].is_number()) return std::nullopt;
    double completed = obs["completed"].get<double>();
    if (!first_) first_ = {now, completed};
    double minutes = std::chrono::duration<double>(now - first_->first).count() / 60.0;
    if (minutes <= 0) return std::nullopt;
    return (completed - first_->second) / minutes;
  }

  // "min 4s, median 9s, max 1m3s", or "none" before any recovery completed.
  std::string recovery_text() const {
    Json r = recovery_summary(recovery_times_);
    if (r["count"] == 0) return "none";
    return "min " + seconds_text(r["min"].get<double>()) + ", median " + seconds_text(r["median"].get<double>()) +
           ", max " + seconds_text(r["max"].get<double>());
  }

  std::string report() const {
    std::string line = "supervision: " + std::to_string(stalls_detected_) + " stalls detected, " +
                       std::to_string(recoveries_) + " recoveries (on_stall runs), " +
                       std::to_string(failed_health_checks_) + " failed health checks, recovery time " +
                       recovery_text();
    if (stalled_since_) line += " (the last stall is not over)";
    if (outages_ > 0)
      line += "; " + endpoint_ + " down " + std::to_string(outages_) + (outages_ == 1 ? " time, " : " times, ") +
              std::to_string(failed_probes_) + " failed probes" +
              (longest_outage_ > Duration::zero() ? ", the longest " + format_duration(longest_outage_) : "");
    return line + ", " + std::to_string(checks_) + " checks";
  }

  Json outputs(const Json& obs) const {
    Json out = obs;
    out["observation"] = obs;
    out["recoveries"] = recoveries_;
    out["checks"] = checks_;
    out["stalls_detected"] = stalls_detected_;
    out["failed_health_checks"] = failed_health_checks_;
    out["recovery_s"] = recovery_summary(recovery_times_);
    out["recovery"] = recovery_text();
    out["failed_probes"] = failed_probes_;
    out["outages"] = outages_;
    out["longest_outage_s"] = std::chrono::duration<double>(longest_outage_).count();
    out["report"] = report();
    return out;
  }

  StepLog log_;
  Json probe_;
  std::string endpoint_;
  std::string stalled_;
  std::string done_;
  int threshold_ = 3;
  Json health_;
  RecoveryGuard guard_;
  int stalls_ = 0;
  int recoveries_ = 0;
  int stalls_detected_ = 0;
  int failed_health_checks_ = 0;
  long checks_ = 0;
  std::deque<TimePoint> recoveries_at_;
  std::optional<std::pair<TimePoint, double>> first_;
  std::optional<TimePoint> stalled_since_;  // the unresolved stall a recovery started from
  std::vector<double> recovery_times_;
  std::optional<TimePoint> down_since_;  // the probe has not answered since
  int down_probes_ = 0;
  int outages_ = 0;
  long failed_probes_ = 0;
  Duration longest_outage_{0};
};

class StallCheckStep final : public StepType {
 public:
  const StepInfo& info() const override {
    static const StepInfo info{
        .name = "stall-check",
        .summary = "Watch a pipeline through a probe; run on_stall after `threshold` stalled checks; end when done",
        .params =
            {{"probe", ParamType::kMap, true, "{http: {url, headers, ...}} or {exec: {argv: [...]}}: a JSON object"},
             {"stalled", ParamType::kString, true,
              "condition over the probe's fields, e.g. processing == 0 and pending > 0"},
             {"done", ParamType::kString, false, "condition that ends the step, e.g. pending == 0 and processing == 0"},
             {"threshold", ParamType::kInteger, false, "stalled checks in a row before on_stall runs (default 3)"},
             {"max_recoveries", ParamType::kAny, false,
              "{count, per}: more recoveries than count within per fails (default none)"},
             {"health_check", ParamType::kMap, false,
              "after on_stall: {command: [argv], timeout} and/or {until, probe, grace, interval}; failing skips "
              "on_healthy"},
             {"interval", ParamType::kDuration, false, "time between checks (default 60s)"},
             {"timeout", ParamType::kDuration, false, "give up after (default: none)"}},
        .nested_lists = {"on_stall", "on_healthy"},
        .side_effects = true,
        .poller = true,
        .own_threshold = true,
        .default_interval = std::chrono::seconds(60)};
    return info;
  }

  void validate(const Json& with, std::vector<std::pair<std::string, std::string>>& problems) const override {
    for (const char* key : {"stalled", "done"}) {
      if (!with.contains(key) || !with[key].is_string()) continue;
      if (auto err = condition_syntax_error(with[key].get<std::string>()))
        problems.emplace_back(key, std::string("`") + key + "` does not parse: " + *err);
    }
    if (with.contains("probe") && with["probe"].is_object() && !with["probe"].contains("http") &&
        !with["probe"].contains("exec"))
      problems.emplace_back("probe", "a probe is {http: {url: ...}} or {exec: {argv: [...]}}");
    if (with.contains("health_check"))
      if (auto problem = health_check_problem(with["health_check"])) problems.emplace_back("health_check", *problem);
  }

  std::unique_ptr<Poller> start_polling(StepContext& ctx) const override { return std::make_unique<StallPoller>(ctx); }
};

}  // namespace

std::unique_ptr<StepType> make_stall_check_step() { return std::make_unique<StallCheckStep>(); }

}  // namespace flowrun
