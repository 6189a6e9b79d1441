// `watch-instance`: watch an instance someone already has, without end. Prints its new log
// lines and each status change once, reports each NEW completion marker (those already in the
// log when it attached are old and left alone) with the result URL, and with `auto_destroy`
// destroys the instance then and keeps watching. API trouble is thrown as transient so the
// engine's poll loop backs off; it stops only when cancelled (Ctrl+C).
#include <cstdio>
#include <string_view>

#include "engine/io/step_error.h"
#include "engine/io/user_regex.h"
#include "engine/step_api/poll_loop.h"
#include "engine/step_api/step_context.h"
#include "steps/instance/instance_steps.h"
#include "steps/instance/log_capture.h"
#include "steps/instance/logs/log_follower.h"

namespace flowrun {
namespace {

constexpr std::string_view kDefaultMarker = "VASTAI_PIPELINE_COMPLETED_SUCCESSFULLY";

class WatchPoller final : public Poller {
 public:
  explicit WatchPoller(StepContext& ctx)
      : provider_(provider_for(ctx)),
        id_(instance_id(ctx.with().value("instance", Json()))),
        marker_(ctx.string_param("marker", std::string(kDefaultMarker))),
        full_(ctx.bool_param("full", false)),
        auto_destroy_(ctx.bool_param("auto_destroy", false)),
        tail_(std::max(1, ctx.int_param("tail", 1000))),
        prefix_(ctx.string_param("prefix", "| ")),
        result_(result_capture(ctx.string_param("result_filter"))),
        follower_(LogFollower::memory_for_tail(tail_)) {
    if (id_.empty()) throw StepError::permanent("watch-instance needs `instance`: an instance id");
    if (marker_.empty()) throw StepError::permanent("the marker must not be empty");
  }

  PollResult poll(StepContext& ctx) override {
    try {
      look(ctx);
    } catch (const StepError& e) {
      if (e.kind() == ErrorKind::kTransient || e.kind() == ErrorKind::kTimeout) ++failures_;
      throw;
    }
    restored(ctx);
    Json out = {{"instance", id_},
                {"status", gone_ ? "gone" : last_status_},
                {"completions", completions_},
                {"old_completions", old_completions_},
                {"result_url", last_result_}};
    return {PollStatus::kPending, out, ""};
  }

  const std::string& id() const { return id_; }
  bool destroyed() const { return destroyed_; }

 private:
  static std::string instance_id(const Json& v) {
    if (v.is_object())
      return v.value("id", Json()).is_string() ? v["id"].get<std::string>() : v.value("id", Json()).dump();
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number()) return v.dump();
    return "";
  }

  void look(StepContext& ctx) {
    if (destroy_owed_) destroy(ctx);  // a destroy that met API trouble is tried again first
    auto state = provider_->get(id_, ctx);
    restored(ctx);  // the API answers again: said before what the answer shows
    if (!state) {
      if (!gone_)
        ctx.log().info("instance " + id_ + " is gone (destroyed or vanished); still watching, Ctrl+C to stop");
      gone_ = true;
      return;
    }
    if (gone_) ctx.log().info("instance " + id_ + " is back");
    gone_ = false;
    gpu_ = state->gpu_name;
    price_ = state->price_per_hour;
    if (state->status != last_status_) {
      std::string why = state->message.empty() ? "" : " (" + state->message + ")";
      if (last_status_.empty())
        ctx.log().info("instance " + id_ + " is " + state->status + why + (gpu_.empty() ? "" : ", " + gpu_));
      else
        ctx.log().info("instance " + id_ + " status changed: " + last_status_ + " -> " + state->status + why);
      last_status_ = state->status;
    }
    if (state->status == "loading" || state->status.empty()) return;  // no log yet
    const std::string snapshot = provider_->logs(id_, tail_, ctx);    // update's lines point into it
    auto update = follower_.feed(snapshot);
    if (update.gap && !first_)
      ctx.log().warn("the log moved on by more than " + std::to_string(tail_) +
                     " lines between two checks; some lines were not seen");
    if (first_) {
      first_ = false;
      attach(update.lines, ctx);
      return;
    }
    for (const auto& line : update.lines) {
      ctx.log().info(prefix_ + std::string(line));
      note_url(line);
      if (line.find(marker_) != std::string::npos) completed(ctx);
    }
  }

  // The log as it was when the monitor attached: its markers are old completions.
  void attach(const std::vector<std::string_view>& lines, StepContext& ctx) {
    for (const auto& line : lines) {
      if (full_) ctx.log().info(prefix_ + std::string(line));
      note_url(line);
      if (line.find(marker_) != std::string::npos) {
        ++old_completions_;
        url_.clear();
      }
    }
    if (!full_ && !lines.empty())
      ctx.log().info(std::to_string(lines.size()) + " lines already in the log, not shown (full=true shows them)");
    if (old_completions_ > 0)
      ctx.log().info(std::to_string(old_completions_) +
                     " old completion(s) already in the log when attached; not acted on");
    ctx.log().info("watching instance " + id_ + (auto_destroy_ ? " (auto_destroy on a new completion)" : "") +
                   "; Ctrl+C stops watching");
  }

  void restored(StepContext& ctx) {
    if (failures_ > 0) ctx.log().info("connection restored after " + std::to_string(failures_) + " failed attempts");
    failures_ = 0;
  }

  // The result URL as video_batch captures it (steps/log_capture): a RESULT_URL= line, else the
  // last https URL of a line that passes `result_filter`.
  static Capture result_capture(const std::string& filter) {
    Capture c;
    c.name = "result_url";
    c.required = false;
    c.rules.push_back({UserRegex("RESULT_URL=(\\S+)"), std::nullopt});
    c.rules.push_back({UserRegex("https://[^\\s\"'<>]+"), std::nullopt});
    if (!filter.empty()) c.rules.back().validate.emplace(filter);
    return c;
  }

  void note_url(std::string_view line) {
    RegexGroups groups;
    if (auto value = result_.take(line, groups)) url_ = std::move(*value);
  }

  void completed(StepContext& ctx) {
    ++completions_;
    last_result_ = url_;
    char price[32];
    std::snprintf(price, sizeof price, "$%.3f/h", price_);
    ctx.log().info("NEW COMPLETION on instance " + id_ + " (GPU " + (gpu_.empty() ? "?" : gpu_) + ", " + price +
                   "): result " + (url_.empty() ? "(no URL in the log)" : url_));
    url_.clear();
    if (auto_destroy_) {
      destroy_owed_ = true;
      destroy(ctx);
    }
  }

  void destroy(StepContext& ctx) {
    bool was_there = provider_->destroy(id_, ctx);
    destroy_owed_ = false;
    destroyed_ = true;
    ctx.log().info(was_there ? "auto_destroy: instance " + id_ + " destroyed; still watching"
                             : "auto_destroy: instance " + id_ + " was already gone");
  }

  std::unique_ptr<InstanceProvider> provider_;
  std::string id_;
  std::string marker_;
  bool full_;
  bool auto_destroy_;
  int tail_;
  std::string prefix_;
  Capture result_;
  LogFollower follower_;
  bool first_ = true;
  bool gone_ = false;
  bool destroy_owed_ = false;
  bool destroyed_ = false;  // by this monitor
  int failures_ = 0;
  int completions_ = 0;
  int old_completions_ = 0;
  std::string last_status_;
  std::string gpu_;
  double price_ = 0;
  std::string url_;          // the last result URL since the last marker
  std::string last_result_;  // the URL of the last new completion
};

class WatchInstanceStep final : public StepType {
 public:
  const StepInfo& info() const override {
    static const StepInfo info = [] {
      StepInfo i{.name = "watch-instance",
                 .summary = "Watch an existing instance without end: new log lines, status changes, new completions",
                 .params = provider_param_specs(),
                 .default_interval = std::chrono::seconds(10)};
      i.params.insert(
          i.params.end(),
          {{"instance", ParamType::kAny, true, "the instance id to watch (or an instance object)"},
           {"marker", ParamType::kString, false,
            "the completion line (default VASTAI_PIPELINE_COMPLETED_SUCCESSFULLY)"},
           {"full", ParamType::kBool, false, "print the whole log at attach time too (default false: only new lines)"},
           {"auto_destroy", ParamType::kBool, false, "destroy the instance on a new completion, then keep watching"},
           {"result_filter", ParamType::kString, false, "regex a https URL must match to be the result (default: any)"},
           {"prefix", ParamType::kString, false, "printed before each log line (default \"| \")"},
           {"tail", ParamType::kInteger, false, "lines asked for on each check (default 1000)"},
           {"interval", ParamType::kDuration, false, "time between checks (default 10s)"},
           {"backoff_first", ParamType::kDuration, false, "wait after the first failed check (default: interval)"},
           {"backoff_max", ParamType::kDuration, false, "the longest wait between failed checks"}});
      return i;
    }();
    return info;
  }

  void validate(const Json& with, std::vector<std::pair<std::string, std::string>>& problems) const override {
    validate_provider_params(with, problems);
  }

  Json run(StepContext& ctx) const override {
    WatchPoller poller = [&] {
      try {
        return WatchPoller(ctx);
      } catch (const RegexError& e) {
        throw StepError::permanent(e.what());
      }
    }();
    try {
      return run_poll_loop(poller, ctx, poll_settings(info(), ctx.with()));
    } catch (const StepError& e) {
      if (e.kind() == ErrorKind::kCancelled)
        ctx.log().info("stopped watching instance " + poller.id() +
                       (poller.destroyed() ? " (destroyed by auto_destroy)" : " (left as it is)") +
                       ". Watch again: flowrun resume " + ctx.run_id +
                       (poller.destroyed() ? "" : "; destroy it: vastai destroy instance " + poller.id()));
      throw;
    }
  }
};

}  // namespace

std::unique_ptr<StepType> make_watch_instance_step() { return std::make_unique<WatchInstanceStep>(); }

}  // namespace flowrun
