// `wait-for-marker`: follow a log (an instance's, a file, a URL or a command's output) until a
// marker line appears; capture values from it, fail on known error lines, show progress, and
// notice an instance that stopped, exited or vanished first.
#include <fcntl.h>
#include <string.h>  // memmem (GNU)
#include <unistd.h>

#include <cstdlib>
#include <functional>

#include "engine/io/http_client.h"
#include "engine/step_api/poll_loop.h"
#include "engine/io/process_runner.h"
#include "engine/step_api/step_context.h"
#include "engine/io/step_error.h"
#include "engine/io/user_regex.h"
#include "steps/instance/instance_steps.h"
#include "steps/instance/logs/file_follower.h"
#include "steps/instance/log_capture.h"
#include "steps/instance/logs/log_follower.h"

namespace flowrun {
namespace {

// A literal substring, or {regex: "..."}.
class LinePattern {
 public:
  static LinePattern from(const Json& v) {
    LinePattern p;
    if (v.is_object() && v.value("regex", Json()).is_string()) {
      p.text_ = v["regex"];
      p.regex_.emplace(p.text_);
    } else if (v.is_string()) {
      p.text_ = v;
    } else {
      throw StepError::permanent("a pattern is a string or {regex: \"...\"}, not " + v.dump());
    }
    return p;
  }
  bool matches(std::string_view line) const {
    if (!regex_) return line.find(text_) != std::string_view::npos;
    return regex_->search(line);
  }
  const std::string& text() const { return text_; }
  bool is_regex() const { return regex_.has_value(); }
  // For a substring: whether it occurs anywhere in `text` (many lines at once).
  bool occurs_in(std::string_view text) const {
    return ::memmem(text.data(), text.size(), text_.data(), text_.size()) != nullptr;
  }

 private:
  std::string text_;
  std::optional<UserRegex> regex_;
};

std::string progress_bar(double percent) {
  int filled = static_cast<int>(percent / 5);
  return "[" + std::string(static_cast<size_t>(std::clamp(filled, 0, 20)), '#') +
         std::string(static_cast<size_t>(20 - std::clamp(filled, 0, 20)), '.') + "]";
}

enum class ShowLogs { kAll, kNew, kNone };

// What one look at the source found.
struct Observation {
  std::string text;     // the end of the log
  bool final = false;   // the source will not grow any more
  std::string ended;    // why the instance will not reach the marker ("" while it may)
};

class MarkerPoller final : public Poller {
 public:
  explicit MarkerPoller(StepContext& ctx) {
    const Json& with = ctx.with();
    marker_ = LinePattern::from(with.value("marker", Json()));
    for (const Json& p : with.value("fail_on", Json::array())) fail_on_.push_back(LinePattern::from(p));
    captures_ = captures_from(with.value("capture", Json()));
    if (with.value("progress", Json()).is_string()) progress_.emplace(with["progress"].get<std::string>());
    std::string show = ctx.string_param("show_logs", "all");
    show_ = show == "none" ? ShowLogs::kNone : show == "new" ? ShowLogs::kNew : ShowLogs::kAll;
    prefix_ = ctx.string_param("prefix", "| ");
    tail_ = std::max(1, ctx.int_param("tail", 1000));
    max_recoveries_ = ctx.int_param("max_recoveries", 0);
    follower_ = LogFollower(std::max<size_t>(5000, static_cast<size_t>(tail_) * 2));
    recent_ = RecentLines(static_cast<size_t>(std::clamp(ctx.int_param("context_lines", 20), 0, 1000)) + 1);
    std::filesystem::path log_file = ctx.string_param("log_file");
    if (!log_file.empty()) {
      if (log_file.is_relative()) log_file = ctx.services().project_root / log_file;
      open_log_file(log_file);
    }

    if (with.contains("file")) {
      file_path_ = ctx.string_param("file");
      if (file_path_.is_relative()) file_path_ = ctx.services().project_root / file_path_;
      file_.emplace();
    }

    const Json instance = with.value("instance", Json());
    if (!instance.is_null()) {
      provider_ = provider_for(ctx);
      instance_ = instance.is_object() ? instance : Json{{"id", instance.is_string() ? instance.get<std::string>() : instance.dump()}};
      instance_["provider"] = provider_->name();
    }
  }

  ~MarkerPoller() override {
    if (log_fd_ >= 0) ::close(log_fd_);
  }

  PollResult poll(StepContext& ctx) override {
    const bool print = show_ == ShowLogs::kAll || (show_ == ShowLogs::kNew && !first_);
    first_ = false;
    std::optional<std::string> failure;  // the fail_on headline
    std::string failed_line;
    std::vector<std::string> after;  // what the poll returned after the failing line
    // The hot path of a large log: no allocation per line unless it is printed or captured.
    auto take = [&](std::string_view line) {
      if (log_fd_ >= 0) log_buffer_.append(line).push_back('\n');
      if (failure) {
        // The rest of this poll is context (a traceback's last line names the error).
        if (print) ctx.log().info(prefix_ + std::string(line));
        after.push_back(clip_line(line));
        return after.size() < kMaxLinesAfter;
      }
      last_line_.assign(line);
      recent_.push(line);
      failure = check_fail_on(line);
      // A progress line is shown as the bar (once per change), not as itself too.
      const bool progress_line = !failure && marker_line_.empty() && progress_ && report_progress(line, ctx);
      if (print && !progress_line) ctx.log().info(prefix_ + std::string(line));
      if (failure) {
        failed_line.assign(line);
        return true;
      }
      capture(line, ctx);
      if (marker_line_.empty() && marker_.matches(line)) marker_line_.assign(line);
      return true;
    };
    Observation seen;
    const auto may_matter = prefilter(print);
    if (file_) {
      // A local file is read by offset: only what was appended, however large the file.
      auto r = file_->follow(file_path_, take, [&] { return !ctx.cancel().cancelled(); }, may_matter);
      if (r.restarted) ctx.log().warn("the log file was rotated or truncated; reading it again from its start");
    } else if (ctx.with().contains("url")) {
      follow_url(ctx, take, may_matter);
    } else {
      seen = observe(ctx);
      auto update = follower_.feed(seen.text, seen.final);
      if (update.gap)
        ctx.log().warn("the log moved on by more than " + std::to_string(tail_) +
                       " lines between two checks (or was truncated); some lines may not have been seen");
      for (const auto& line : update.lines)
        if (!take(line)) break;
    }
    flush_log_file(ctx);
    if (failure) {
      std::vector<std::string> context = recent_.lines();
      context.insert(context.end(), after.begin(), after.end());
      return fail(*failure + failure_line(failed_line, after), std::move(context));
    }
    if (!marker_line_.empty()) return finish();
    if (!seen.ended.empty()) return instance_lost(seen.ended, ctx);
    return {};
  }

 private:
  static constexpr size_t kMaxLinesAfter = 200;

  // A failure: its message is one line; the log lines around it are the failed step's outputs
  // (failure_context), where results_report finds them.
  static PollResult fail(const std::string& headline, std::vector<std::string> context) {
    Json out = Json::object();
    out["failure_context"] = std::move(context);
    return {PollStatus::kFailed, out, headline};
  }

  void open_log_file(const std::filesystem::path& path) {
    std::error_code ec;
    if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
    log_fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd_ < 0)
      throw StepError::permanent("cannot open log_file " + path.string() + ": " + std::string(::strerror(errno)));
    log_path_ = path.string();
  }

  // Appends what this poll read: a crash loses at most one poll's lines.
  void flush_log_file(StepContext& ctx) {
    if (log_fd_ < 0 || log_buffer_.empty()) return;
    std::string_view rest = log_buffer_;
    while (!rest.empty()) {
      ssize_t n = ::write(log_fd_, rest.data(), rest.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ctx.log().warn("could not write to " + log_path_ + ": " + std::string(::strerror(errno)));
        break;
      }
      rest.remove_prefix(static_cast<size_t>(n));
    }
    log_buffer_.clear();
  }

  // When no line needs printing, capturing or a progress look, only lines holding the marker or
  // a fail_on string matter, and a run of lines without any of them (found by one search over
  // the run, as grep does) need not be split and scanned line by line. Empty when every line
  // must be looked at (a regex cannot be searched for this way).
  std::function<bool(std::string_view)> prefilter(bool print) const {
    if (print || !captures_.empty() || progress_ || !marker_line_.empty() || marker_.is_regex() || log_fd_ >= 0)
      return {};
    for (const auto& p : fail_on_)
      if (p.is_regex()) return {};
    return [this](std::string_view lines) {
      if (marker_.occurs_in(lines)) return true;
      for (const auto& p : fail_on_)
        if (p.occurs_in(lines)) return true;
      return false;
    };
  }

  // The start of the message when `line` matches a fail_on pattern before the marker.
  std::optional<std::string> check_fail_on(std::string_view line) const {
    if (!marker_line_.empty()) return std::nullopt;  // after the marker only captures count
    for (const auto& p : fail_on_)
      if (p.matches(line)) return "the log matched fail_on '" + p.text() + "': ";
    return std::nullopt;
  }

  void capture(std::string_view line, StepContext& ctx) {
    for (const auto& c : captures_) {
      auto value = c.take(line, groups_);
      if (!value) continue;
      ctx.log().debug("captured " + c.name + " = " + *value);
      captured_[c.name] = std::move(*value);
    }
  }

  // Whether `line` is a progress line; logs the bar when the progress moved to another tenth.
  bool report_progress(std::string_view line, StepContext& ctx) {
    if (!progress_->search(line, groups_) || groups_.size() < 2) return false;
    // (done)/(total) when two groups matched, (percent) when one did; alternatives may leave
    // groups unmatched, so take the matched ones in order.
    std::vector<std::string> groups;
    for (size_t i = 1; i < groups_.size(); ++i)
      if (groups_[i]) groups.emplace_back(*groups_[i]);
    double percent = 0;
    try {
      if (groups.size() >= 2) percent = 100.0 * std::stod(groups[0]) / std::stod(groups[1]);
      else if (groups.size() == 1) percent = std::stod(groups[0]);
      else return false;
    } catch (const std::exception&) {
      return false;
    }
    percent = std::clamp(percent, 0.0, 100.0);
    progress_percent_ = percent;
    int decile = static_cast<int>(percent / 10);
    if (decile == last_decile_) return true;
    last_decile_ = decile;
    char pct[16];
    std::snprintf(pct, sizeof pct, "%3.0f%%", percent);
    ctx.log().info("progress " + progress_bar(percent) + " " + pct + " (" + std::string(groups_[0].value_or("")) + ")");
    return true;
  }

  PollResult finish() {
    for (const auto& c : captures_)
      if (c.required && !captured_.contains(c.name))
        return fail("the marker appeared but " + c.name + " was never captured (no line of the log gave it)",
                    recent_.lines());
    Json out = captured_;
    out["marker_line"] = marker_line_;
    out["lines"] = follower_.lines_seen();
    out["recoveries"] = recoveries_;
    out["finished_at"] = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    out["progress"] = progress_percent_ ? Json(*progress_percent_) : Json();
    if (!instance_.is_null()) {
      out["instance"] = instance_;
      out["instance_id"] = instance_["id"];
    }
    return {PollStatus::kDone, out, ""};
  }

  Observation observe(StepContext& ctx) {
    const Json& with = ctx.with();
    if (provider_) return observe_instance(ctx);
    ProcessSpec spec;
    for (const Json& a : with.value("command", Json::array())) spec.argv.push_back(a.is_string() ? a.get<std::string>() : a.dump());
    spec.cwd = ctx.services().project_root.string();
    spec.timeout = ctx.bounded(std::chrono::seconds(60));
    ProcessResult r = ctx.services().processes.run(spec, ctx.cancel());
    if (r.exit_code != 0)
      throw StepError::transient("the log command exited with " + std::to_string(r.exit_code) + ": " + r.err.substr(0, 200));
    return {r.out, false, ""};
  }

  // A URL is read from where the last poll stopped with `Range: bytes=N-`, so each poll
  // downloads what was appended (206). A server that ignores ranges (200) sends it all and the
  // part already seen is skipped; 416 means nothing new. A log shorter than what was read was
  // truncated or replaced, and is read again from its start.
  void follow_url(StepContext& ctx, const std::function<bool(std::string_view)>& take,
                  const std::function<bool(std::string_view)>& may_matter) {
    HttpRequest req;
    req.url = ctx.string_param("url");
    req.timeout = ctx.bounded(std::chrono::seconds(60));
    if (url_offset_ > 0) req.headers.emplace_back("Range", "bytes=" + std::to_string(url_offset_) + "-");
    HttpResponse r = ctx.services().http.send(req, ctx.cancel());
    if (r.status == 404) return;  // not there yet
    if (r.status == 416) {
      // "bytes */SIZE": nothing past the offset; a SIZE below it means the log was cut.
      const std::string range = r.header("content-range");
      const auto slash = range.rfind('/');
      if (slash != std::string::npos && std::strtoull(range.c_str() + slash + 1, nullptr, 10) < url_offset_) restart_url(ctx);
      return;
    }
    if (r.status < 200 || r.status >= 300)
      throw StepError::http(r.status, "GET " + req.url + " returned HTTP " + std::to_string(r.status), parse_retry_after(r));
    std::string_view fresh = r.body;
    if (r.status == 206) {
      const std::string range = r.header("content-range");  // "bytes START-END/SIZE"
      const uint64_t start = std::strtoull(range.c_str() + std::min<size_t>(range.size(), 6), nullptr, 10);
      if (start != url_offset_) {
        restart_url(ctx);
        return;
      }
    } else if (url_offset_ > 0) {
      if (r.body.size() < url_offset_) {
        restart_url(ctx);
      } else {
        fresh.remove_prefix(url_offset_);
      }
    }
    url_offset_ += fresh.size();
    bool go = true;
    auto deliver = [&](std::string_view line) {
      if (go) go = take(line);
    };
    if (may_matter)
      url_lines_.feed_filtered(fresh, may_matter, deliver);
    else
      url_lines_.feed(fresh, deliver);
  }

  void restart_url(StepContext& ctx) {
    ctx.log().warn("the log at the URL was truncated or replaced; reading it again from its start");
    url_offset_ = 0;
    url_lines_ = LineSplitter();
  }

  Observation observe_instance(StepContext& ctx) {
    std::string id = instance_["id"];
    auto state = provider_->get(id, ctx);
    if (!state) return {"", true, "instance " + id + " vanished"};
    if (state->status != last_status_) {
      if (!last_status_.empty() || state->status != "running")
        ctx.log().info("instance " + id + " is " + state->status + (state->message.empty() ? "" : ": " + state->message));
      last_status_ = state->status;
      instance_["status"] = state->status;
    }
    bool dead = instance_stopped_for_good(state->status);
    if (state->status != "running" && !dead) return {};  // loading or rebooting: no log yet
    Observation o{provider_->logs(id, tail_, ctx), dead, ""};
    if (dead) o.ended = "instance " + id + " went " + state->status + (state->message.empty() ? "" : " (" + state->message + ")");
    return o;
  }

  // The instance stopped, exited or vanished before the marker.
  PollResult instance_lost(const std::string& why, StepContext& ctx) {
    // Perhaps an earlier attempt (before a crash) already replaced it: the label tells.
    std::string label = instance_.value("label", "");
    std::string old_id = instance_["id"];
    if (!label.empty())
      for (const auto& s : provider_->find_by_label(label, ctx))
        if (s.id != old_id && !instance_stopped_for_good(s.status)) {
          ctx.log().warn(why + "; continuing with instance " + s.id + ", which carries its label");
          switch_to(s);
          return {};
        }
    std::string last = last_line_.empty() ? "" : "; last log line: " + clip_line(last_line_);
    if (recoveries_ >= max_recoveries_) return fail(why + " before the marker" + last, recent_.lines());
    const Json spec_json = instance_.value("spec", Json());
    if (!spec_json.is_object())
      return fail(why + " before the marker, and no spec to re-provision from" + last, recent_.lines());
    ++recoveries_;
    ctx.log().warn(why + " before the marker; re-provisioning (" + std::to_string(recoveries_) + " of " +
                   std::to_string(max_recoveries_) + ")");
    provider_->destroy(old_id, ctx);
    InstanceRequest req = instance_request(spec_json, label);
    InstanceState fresh = rent(*provider_, req.filter, req.spec, req.max_offers, ctx);
    fresh = wait_until_running(*provider_, fresh, ctx, req.ready_timeout, req.ready_interval);
    switch_to(fresh);
    return {};
  }

  void switch_to(const InstanceState& s) {
    Json spec = instance_.value("spec", Json());
    instance_ = instance_json(provider_->name(), s);
    if (!spec.is_null()) instance_["spec"] = spec;
    follower_ = LogFollower(std::max<size_t>(5000, static_cast<size_t>(tail_) * 2));
    last_status_.clear();
  }

  LinePattern marker_;
  std::vector<LinePattern> fail_on_;
  std::vector<Capture> captures_;
  std::optional<UserRegex> progress_;
  RegexGroups groups_;  // reused by every search, so a line costs no allocation for it
  ShowLogs show_ = ShowLogs::kAll;
  std::string prefix_;
  int tail_ = 1000;
  std::optional<FileFollower> file_;  // set when following a local file
  uint64_t url_offset_ = 0;           // bytes of the URL's log read so far
  LineSplitter url_lines_;
  std::filesystem::path file_path_;
  int max_recoveries_ = 0;

  std::unique_ptr<InstanceProvider> provider_;
  Json instance_;  // null unless following an instance
  int recoveries_ = 0;
  std::string last_status_;

  LogFollower follower_;
  bool first_ = true;
  std::string last_line_;  // for the message when the instance is lost
  RecentLines recent_;     // the lines before a failure, and the failing one
  int log_fd_ = -1;        // log_file, appended per poll
  std::string log_path_;
  std::string log_buffer_;
  Json captured_ = Json::object();
  std::string marker_line_;
  std::optional<double> progress_percent_;
  int last_decile_ = -1;
};

class WaitForMarkerStep final : public StepType {
 public:
  const StepInfo& info() const override {
    static const StepInfo info = [] {
      StepInfo i{.name = "wait-for-marker",
                 .summary = "Follow a log until a marker line appears; capture values, fail on error lines",
                 .params = provider_param_specs(),
                 .poller = true,
                 .default_interval = std::chrono::seconds(15),
                 .default_timeout = std::chrono::hours(2)};
      i.params.insert(
          i.params.end(),
          {{"marker", ParamType::kAny, true, "the success line: a substring, or {regex: \"...\"}"},
           {"instance", ParamType::kAny, false, "follow this instance's log (provision's outputs.instance)"},
           {"file", ParamType::kString, false, "or follow a file"},
           {"url", ParamType::kString, false, "or follow a URL's text"},
           {"command", ParamType::kList, false, "or follow what a command prints (argument vector)"},
           {"capture", ParamType::kMap, false, "NAME: regex, {pattern, validate, required} or a list of {pattern, validate}; the last accepted value wins"},
           {"fail_on", ParamType::kList, false, "lines that fail the step at once (substrings or {regex})"},
           {"progress", ParamType::kString, false, "regex: (done)/(total) or (percent), shown as a progress bar instead of the line"},
           {"context_lines", ParamType::kInteger, false, "log lines before a failure kept in its message (default 20)"},
           {"log_file", ParamType::kString, false, "append every log line read to this file (created 0600)"},
           {"show_logs", ParamType::kString, false, "all (default), new (not what was there at the first check) or none"},
           {"prefix", ParamType::kString, false, "printed before each log line (default \"| \")"},
           {"tail", ParamType::kInteger, false, "lines asked for on each check (default 1000)"},
           {"max_recoveries", ParamType::kInteger, false, "re-provision a lost instance this often (default 0: fail)"},
           {"interval", ParamType::kDuration, false, "time between checks (default 15s)"},
           {"threshold", ParamType::kInteger, false, "consecutive checks that must see the marker (default 1)"},
           {"timeout", ParamType::kDuration, false, "give up after (default 2h)"}});
      return i;
    }();
    return info;
  }

  void validate(const Json& with, std::vector<std::pair<std::string, std::string>>& problems) const override {
    validate_provider_params(with, problems);
    int sources = 0;
    for (const char* k : {"instance", "file", "url", "command"}) sources += with.contains(k) ? 1 : 0;
    if (sources != 1) problems.emplace_back("marker", "wait-for-marker follows exactly one of instance, file, url, command");
    auto check_regex = [&](const std::string& param, const Json& v) {
      if (!v.is_string() || v.get<std::string>().find("${{") != std::string::npos) return;
      if (auto error = UserRegex::syntax_error(v.get<std::string>()))
        problems.emplace_back(param, "'" + v.get<std::string>() + "' is not a valid regex: " + *error +
                                         " (RE2 syntax: no backreferences or lookaround)");
    };
    if (with.contains("marker") && with["marker"].is_object()) check_regex("marker", with["marker"].value("regex", Json()));
    if (with.contains("progress")) check_regex("progress", with["progress"]);
    if (with.contains("capture") && with["capture"].is_object())
      for (const auto& [name, v] : with["capture"].items())
        for (const Json& re : capture_regexes(v)) check_regex("capture", re);
    if (with.contains("fail_on") && with["fail_on"].is_array())
      for (const auto& v : with["fail_on"])
        if (v.is_object()) check_regex("fail_on", v.value("regex", Json()));
    if (with.contains("show_logs") && with["show_logs"].is_string()) {
      std::string s = with["show_logs"];
      if (s != "all" && s != "new" && s != "none" && s.find("${{") == std::string::npos)
        problems.emplace_back("show_logs", "show_logs is all, new or none, not '" + s + "'");
    }
  }

  std::unique_ptr<Poller> start_polling(StepContext& ctx) const override {
    try {
      return std::make_unique<MarkerPoller>(ctx);
    } catch (const RegexError& e) {
      throw StepError::permanent(e.what());
    }
  }
};

}  // namespace

std::unique_ptr<StepType> make_wait_for_marker_step() { return std::make_unique<WaitForMarkerStep>(); }

}  // namespace flowrun
