#include "steps/instance/marker_poller.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "engine/step_api/execution_recorder.h"
#include "engine/step_api/live_patch.h"
#include "engine/step_api/step_context.h"
#include "engine/step_api/step_signals.h"
#include "steps/instance/instance_recovery.h"
#include "steps/instance/line_scanner.h"
#include "steps/instance/logs/command_source.h"
#include "steps/instance/logs/file_source.h"
#include "steps/instance/logs/instance_source.h"
#include "steps/instance/logs/log_copy.h"
#include "steps/instance/logs/url_source.h"
#include "steps/instance/providers/registry.h"

namespace flowrun {
namespace {

enum class ShowLogs { kAll, kNew, kNone };

ShowLogs show_logs(const std::string& show) {
  return show == "none" ? ShowLogs::kNone : show == "new" ? ShowLogs::kNew : ShowLogs::kAll;
}

std::unique_ptr<LogCopy> log_copy(StepContext& ctx) {
  std::filesystem::path path = ctx.string_param("log_file");
  if (path.empty()) return nullptr;
  if (path.is_relative()) path = ctx.services().project_root / path;
  return std::make_unique<LogCopy>(path);
}

class MarkerPoller final : public Poller {
 public:
  // Parameters are read in this order (a bad one ahead of another is the one reported): the
  // scan rules, show_logs, prefix, tail, max_recoveries, context_lines, log_file, the source.
  explicit MarkerPoller(StepContext& ctx) : MarkerPoller(ctx, ScanRules::from(ctx.with())) {}
  MarkerPoller(StepContext& ctx, ScanRules rules)
      : show_(show_logs(ctx.string_param("show_logs", "all"))),
        prefix_(ctx.string_param("prefix", "| ")),
        tail_(std::max(1, ctx.int_param("tail", 1000))),
        recovery_(ctx.int_param("max_recoveries", 0)),
        live_(ctx.services().recorder != nullptr),
        context_lines_(context_lines(ctx, rules)),
        scanner_(std::move(rules), context_lines_, live_ ? kLiveTailLines : 0),
        copy_(log_copy(ctx)),
        source_(choose_source(ctx, tail_)) {}

  PollResult poll(StepContext& ctx) override {
    PollResult result = read_and_judge(ctx);
    // Not after a read that threw: its lines, not reported yet, go with the next poll's.
    scanner_.end_read();
    return result;
  }

 private:
  PollResult read_and_judge(StepContext& ctx) {
    const bool print = show_ == ShowLogs::kAll || (show_ == ShowLogs::kNew && !first_);
    first_ = false;
    std::function<void(std::string_view)> show;
    if (print) show = [&](std::string_view line) { ctx.log().info(prefix_ + std::string(line)); };
    // The hot path of a large log: no allocation per line unless it is printed or captured.
    auto take = [&](std::string_view line) {
      if (copy_) copy_->add(line);
      return scanner_.scan(line, ctx.log(), show);
    };
    // Lines that are printed or copied must all be read; otherwise the scanner may skip runs.
    LinePrefilter may_matter = print || copy_ ? LinePrefilter() : scanner_.prefilter(ctx.log());
    const std::string ended = source_->read(ctx, take, may_matter);
    if (copy_) copy_->flush(ctx.log());
    if (live_ && (scanner_.lines_kept() != reported_ || first_report_)) report_live_state(ctx);
    if (auto failure = scanner_.failure()) return fail(failure->message, std::move(failure->context));
    if (scanner_.marker_seen()) return finish();
    if (!ended.empty() && instance_) {
      const Json lost = instance_->instance()["id"];
      report_event(ctx, "instance_lost", ended, {{"instance", lost}, {"reason", ended}});
      if (auto failed = recovery_.recover(*instance_, ended, scanner_.last_line(), ctx))
        return fail(*failed, scanner_.recent_lines());
      const Json now = instance_->instance()["id"];
      report_event(ctx, "instance_recovered",
                   "continuing with instance " + (now.is_string() ? now.get<std::string>() : now.dump()),
                   {{"instance", now}, {"reason", ended}, {"lost", lost}});
      report_live(ctx, {{"instance", now}});
    }
    return {};
  }

  // Lines before a failure kept for its context: none unless something shows them (a fail_on
  // line's, a missing capture's or a lost instance's failure), so that a waiting monitor keeps
  // no lines of its own.
  static int context_lines(StepContext& ctx, const ScanRules& rules) {
    const int asked = ctx.int_param("context_lines", 20);
    const Json instance = ctx.with().value("instance", Json());
    return rules.fail_on.empty() && rules.captures.empty() && instance.is_null() ? 0 : asked;
  }

  // One live patch per poll, not per line: where the log is, for live views. The tail's lines
  // replace the state's when the read gave a whole tail or this attempt reports for the first
  // time (an earlier attempt's tail is not this one's), and are added to them otherwise.
  void report_live_state(const StepContext& ctx) {
    const size_t fresh = static_cast<size_t>(std::min<uint64_t>(scanner_.lines_kept() - reported_, kLiveTailLines));
    const bool whole = fresh == kLiveTailLines || first_report_;
    first_report_ = false;
    reported_ = scanner_.lines_kept();
    Json tail = Json::array();
    for (std::string& line : scanner_.tail(fresh)) {
      if (line.size() > kLiveLineMax) line.resize(kLiveLineMax);
      tail.push_back(std::move(line));
    }
    Json patch = whole ? Json{{"log_tail", std::move(tail)}} : log_tail_added(std::move(tail), kLiveTailLines);
    patch["last_line"] = scanner_.last_line().substr(0, kLiveLineMax);
    if (scanner_.progress()) {
      patch["progress"] = *scanner_.progress();
      patch["progress_text"] = scanner_.progress_text();
    }
    if (instance_) patch["instance"] = instance_->instance()["id"];
    report_live(ctx, patch);
  }

  // The one source `with` names (validate saw to that).
  std::unique_ptr<LogSource> choose_source(StepContext& ctx, int tail) {
    const Json& with = ctx.with();
    if (with.contains("file")) {
      std::filesystem::path path = ctx.string_param("file");
      if (path.is_relative()) path = ctx.services().project_root / path;
      return std::make_unique<FileLogSource>(path);
    }
    if (with.contains("url")) return std::make_unique<UrlLogSource>(ctx.string_param("url"));
    if (const Json instance = with.value("instance", Json()); !instance.is_null()) {
      auto source = std::make_unique<InstanceLogSource>(provider_for(ctx), instance, tail);
      instance_ = source.get();
      return source;
    }
    std::vector<std::string> argv;
    for (const Json& a : with.value("command", Json::array()))
      argv.push_back(a.is_string() ? a.get<std::string>() : a.dump());
    return std::make_unique<CommandLogSource>(std::move(argv), ctx.services().project_root.string(), tail);
  }

  // A failure: its message is one line; the log lines around it are the failed step's outputs
  // (failure_context), where results_report finds them.
  static PollResult fail(const std::string& headline, std::vector<std::string> context) {
    Json out = Json::object();
    out["failure_context"] = std::move(context);
    return {PollStatus::kFailed, out, headline};
  }

  PollResult finish() {
    if (auto name = scanner_.missing_capture())
      return fail("the marker appeared but " + *name + " was never captured (no line of the log gave it)",
                  scanner_.recent_lines());
    Json out = scanner_.captured();
    out["marker_line"] = scanner_.marker_line();
    out["lines"] = source_->lines_seen();
    out["recoveries"] = recovery_.recoveries();
    out["finished_at"] = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    out["progress"] = scanner_.progress() ? Json(*scanner_.progress()) : Json();
    if (instance_) {
      out["instance"] = instance_->instance();
      out["instance_id"] = instance_->instance()["id"];
    }
    return {PollStatus::kDone, out, ""};
  }

  // Live views (with a recorder only): the last lines read, each at most kLiveLineMax bytes;
  // the scanner keeps them until the poll's report, the live state after it.
  static constexpr size_t kLiveTailLines = 20;
  static constexpr size_t kLiveLineMax = 400;

  ShowLogs show_;
  std::string prefix_;
  int tail_;
  InstanceRecovery recovery_;
  bool live_;
  int context_lines_;
  LineScanner scanner_;
  std::unique_ptr<LogCopy> copy_;          // log_file, when given
  InstanceLogSource* instance_ = nullptr;  // source_, when it follows an instance (set by choose_source)
  std::unique_ptr<LogSource> source_;
  bool first_ = true;
  bool first_report_ = true;
  uint64_t reported_ = 0;  // scanner_.lines_kept() at the last live report
};

}  // namespace

std::unique_ptr<Poller> make_marker_poller(StepContext& ctx) { return std::make_unique<MarkerPoller>(ctx); }

}  // namespace flowrun
