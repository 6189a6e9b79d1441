// `stall-check`: watch a pipeline through a probe; when it has looked stalled for `threshold`
// checks in a row, run the `on_stall` steps (restart, requeue) and start counting again; end
// when `done` holds. `max_recoveries: {count, per}` stops a restart loop: restarting that does
// not help is a failure someone must look at, not something to repeat all night.
#include <cstdio>
#include <deque>

#include "engine/expression.h"
#include "engine/step_context.h"
#include "engine/step_error.h"
#include "engine/utf8.h"
#include "engine/workflow.h"
#include "steps/probe.h"
#include "steps/simple_steps.h"

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
      line += rate + (eta < std::chrono::seconds(1) ? std::string("<1s")
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

class StallPoller final : public Poller {
 public:
  explicit StallPoller(StepContext& ctx) {
    const Json& with = ctx.with();
    probe_ = with.value("probe", Json());
    stalled_ = ctx.string_param("stalled");
    done_ = ctx.string_param("done");
    threshold_ = std::max(1, ctx.int_param("threshold", 3));
    const Json guard = with.value("max_recoveries", Json());
    if (guard.is_number()) guard_.count = guard.get<int>();
    if (guard.is_object()) {
      guard_.count = guard.value("count", 0);
      if (auto per = json_to_duration(guard.value("per", Json("1h")))) guard_.per = *per;
    }
  }

  PollResult poll(StepContext& ctx) override {
    Json obs = run_probe(probe_, ctx);
    TimePoint now = ctx.clock().now();
    ++checks_;
    ctx.log().info(progress_line(obs, rate(obs, now)));

    if (!done_.empty() && holds(done_, obs)) return {PollStatus::kDone, outputs(obs), ""};
    if (!holds(stalled_, obs)) {
      if (stalls_ > 0) ctx.log().info("moving again after " + std::to_string(stalls_) + " stalled check(s)");
      stalls_ = 0;
      return {};
    }
    ++stalls_;
    if (stalls_ < threshold_) {
      ctx.log().warn("looks stalled (" + std::to_string(stalls_) + "/" + std::to_string(threshold_) + "): " + stalled_);
      return {};
    }
    while (!recoveries_at_.empty() && now - recoveries_at_.front() >= guard_.per) recoveries_at_.pop_front();
    if (guard_.count > 0 && static_cast<int>(recoveries_at_.size()) >= guard_.count)
      return {PollStatus::kFailed, Json::object(),
              "stalled again after " + std::to_string(recoveries_at_.size()) + " recoveries within " +
                  format_duration(guard_.per) + " (max_recoveries " + std::to_string(guard_.count) +
                  "): the on_stall steps are not helping; last check: " + progress_line(obs, std::nullopt)};
    recoveries_at_.push_back(now);
    ++recoveries_;
    ctx.log().warn("stalled for " + std::to_string(stalls_) + " checks in a row; running on_stall (recovery " +
                   std::to_string(recoveries_) + ")");
    stalls_ = 0;
    ctx.run_nested("on_stall", {{"observation", obs}, {"recoveries", recoveries_}});
    return {};
  }

 private:
  // Conditions are expressions over the probe's fields: "processing == 0 and pending > 0".
  static bool holds(const std::string& condition, const Json& obs) {
    try {
      return probe_condition(condition, obs);
    } catch (const ExpressionError& e) {
      throw StepError::permanent("condition `" + condition + "` on " + dump_json(obs) + ": " + e.what());
    }
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

  Json outputs(const Json& obs) const {
    Json out = obs;
    out["observation"] = obs;
    out["recoveries"] = recoveries_;
    out["checks"] = checks_;
    return out;
  }

  Json probe_;
  std::string stalled_;
  std::string done_;
  int threshold_ = 3;
  RecoveryGuard guard_;
  int stalls_ = 0;
  int recoveries_ = 0;
  long checks_ = 0;
  std::deque<TimePoint> recoveries_at_;
  std::optional<std::pair<TimePoint, double>> first_;
};

class StallCheckStep final : public StepType {
 public:
  const StepInfo& info() const override {
    static const StepInfo info{
        .name = "stall-check",
        .summary = "Watch a pipeline through a probe; run on_stall after `threshold` stalled checks; end when done",
        .params = {{"probe", "map", true, "{http: {url, headers, ...}} or {exec: {argv: [...]}}: a JSON object"},
                   {"stalled", "string", true, "condition over the probe's fields, e.g. processing == 0 and pending > 0"},
                   {"done", "string", false, "condition that ends the step, e.g. pending == 0 and processing == 0"},
                   {"threshold", "integer", false, "stalled checks in a row before on_stall runs (default 3)"},
                   {"max_recoveries", "any", false, "{count, per}: more recoveries than count within per fails (default none)"},
                   {"interval", "duration", false, "time between checks (default 60s)"},
                   {"timeout", "duration", false, "give up after (default: none)"}},
        .nested_lists = {"on_stall"},
        .side_effects = true,
        .poller = true,
        .own_threshold = true,
        .default_interval = std::chrono::seconds(60)};
    return info;
  }

  void validate(const Json& with, std::vector<std::pair<std::string, std::string>>& problems) const override {
    for (const char* key : {"stalled", "done"}) {
      if (!with.contains(key) || !with[key].is_string()) continue;
      if (auto err = expression_syntax_error(with[key].get<std::string>()))
        problems.emplace_back(key, std::string("`") + key + "` does not parse: " + *err);
    }
    if (with.contains("probe") && with["probe"].is_object() && !with["probe"].contains("http") && !with["probe"].contains("exec"))
      problems.emplace_back("probe", "a probe is {http: {url: ...}} or {exec: {argv: [...]}}");
  }

  std::unique_ptr<Poller> start_polling(StepContext& ctx) const override { return std::make_unique<StallPoller>(ctx); }
};

}  // namespace

std::unique_ptr<StepType> make_stall_check_step() { return std::make_unique<StallCheckStep>(); }

}  // namespace flowrun
