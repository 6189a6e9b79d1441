#include "steps/instance/line_scanner.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "engine/io/step_error.h"

namespace flowrun {

LinePattern LinePattern::from(const Json& v) {
  LinePattern p;
  if (v.is_object() && v.value("regex", Json()).is_string()) {
    p.text_ = v["regex"];
    p.regex_.emplace(p.text_);
  } else if (v.is_string()) {
    p.text_ = v;
    p.literal_ = LiteralFinder(p.text_);
  } else {
    throw StepError::permanent("a pattern is a string or {regex: \"...\"}, not " + v.dump());
  }
  return p;
}

bool LinePattern::matches(std::string_view line) const {
  if (!regex_) return literal_.occurs_in(line);
  return regex_->search(line);
}

bool LinePattern::occurs_in(std::string_view text) const { return literal_.occurs_in(text); }

ScanRules ScanRules::from(const Json& with) {
  ScanRules r{LinePattern::from(with.value("marker", Json())), {}, {}, std::nullopt};
  for (const Json& p : with.value("fail_on", Json::array())) r.fail_on.push_back(LinePattern::from(p));
  r.captures = captures_from(with.value("capture", Json()));
  if (with.value("progress", Json()).is_string()) r.progress.emplace(with["progress"].get<std::string>());
  return r;
}

std::string progress_bar(double percent) {
  int filled = static_cast<int>(percent / 5);
  return "[" + std::string(static_cast<size_t>(std::clamp(filled, 0, 20)), '#') +
         std::string(static_cast<size_t>(20 - std::clamp(filled, 0, 20)), '.') + "]";
}

LineScanner::LineScanner(ScanRules rules, int context_lines, size_t tail_lines)
    : rules_(std::move(rules)),
      context_keep_(static_cast<size_t>(std::clamp(context_lines, 0, 1000))),
      recent_(std::max(context_keep_ + 1, tail_lines)) {
  only_substrings_ =
      !rules_.marker.is_regex() && rules_.captures.empty() && !rules_.progress &&
      std::none_of(rules_.fail_on.begin(), rules_.fail_on.end(), [](const LinePattern& p) { return p.is_regex(); });
  if (only_substrings_) return;  // LiteralFinder will do: no set (a monitor keeps it as long as it waits)
  auto add = [&](const LinePattern& p) {
    p.is_regex() ? patterns_.add_regex(p.text()) : patterns_.add_literal(p.text());
  };
  add(rules_.marker);
  for (const auto& p : rules_.fail_on) add(p);
  for (const auto& c : rules_.captures)
    for (const auto& r : c.rules) patterns_.add_regex(r.pattern.pattern());
  if (rules_.progress) progress_index_ = patterns_.add_regex(rules_.progress->pattern());
  patterns_.compile();
}

bool LineScanner::scan(std::string_view line, const StepLog& log, const std::function<void(std::string_view)>& show) {
  if (failure_) {
    // The rest of this read is context (a traceback's last line names the error).
    if (show) show(line);
    failure_->after.push_back(clip_line(line));
    return failure_->after.size() < kMaxLinesAfter;
  }
  last_line_.assign(line);
  recent_.push(line);
  std::optional<std::string> headline = check_fail_on(line);
  // A progress line is shown as the bar (once per change), not as itself too.
  const bool progress_line = !headline && marker_line_.empty() && rules_.progress && report_progress(line, log);
  if (show && !progress_line) show(line);
  if (headline) {
    failure_.reset(new FailureSeen{std::move(*headline), std::string(line), {}});
    return true;
  }
  capture(line, log);
  if (marker_line_.empty() && rules_.marker.matches(line)) marker_line_.assign(line);
  return true;
}

std::function<bool(std::string_view)> LineScanner::prefilter(const StepLog& log) {
  if (failure_) return {};
  if (only_substrings_) {
    if (!marker_line_.empty()) return {};  // after the marker, lines are read for captures
    return [this, log](std::string_view lines) {
      if (failure_ || rules_.marker.occurs_in(lines)) return true;
      for (const auto& p : rules_.fail_on)
        if (p.occurs_in(lines)) return true;
      skip_run(lines, false, log);
      return false;
    };
  }
  if (!patterns_.usable()) return {};
  return [this, log](std::string_view lines) { return run_may_matter(lines, log); };
}

// One pass of the set over the run; a run where nothing but progress occurs is skipped.
bool LineScanner::run_may_matter(std::string_view lines, const StepLog& log) {
  if (failure_ || !patterns_.occurring(lines, found_)) return true;  // after a failure every line is context
  bool progress = false;
  for (int i : found_) {
    if (i != progress_index_) return true;
    progress = true;
  }
  skip_run(lines, progress, log);
  return false;
}

// What scanning the lines of a ruled-out run before its last one would have left behind: the
// recent lines, and the progress of the last progress line (only the bar of that one is logged).
void LineScanner::skip_run(std::string_view lines, bool progress, const StepLog& log) {
  const std::string_view body = lines.substr(0, lines.size() - 1);  // without the last line's '\n'
  const size_t last = body.rfind('\n');
  if (last == std::string_view::npos) return;  // one line: the reader scans it
  const std::string_view before = body.substr(0, last);
  // The lines before the last one, newest first, as far back as the context (or the tail) or
  // progress needs.
  const size_t keep = recent_.keep() - 1;
  std::vector<std::string_view> kept;
  bool want_progress = progress && marker_line_.empty();
  size_t end = before.size();
  while (true) {
    const size_t nl = end == 0 ? std::string_view::npos : before.rfind('\n', end - 1);
    const size_t start = nl == std::string_view::npos ? 0 : nl + 1;
    const std::string_view line = before.substr(start, end - start);
    if (kept.size() < keep) kept.push_back(line);
    if (want_progress && report_progress(line, log)) want_progress = false;
    if ((kept.size() >= keep && !want_progress) || nl == std::string_view::npos) break;
    end = nl;
  }
  for (auto it = kept.rbegin(); it != kept.rend(); ++it) recent_.push(*it);
}

std::optional<LineScanner::Failure> LineScanner::failure() const {
  if (!failure_) return std::nullopt;
  std::vector<std::string> context = recent_.lines(context_keep_ + 1);
  context.insert(context.end(), failure_->after.begin(), failure_->after.end());
  return Failure{failure_->headline + failure_line(failure_->line, failure_->after), std::move(context)};
}

std::vector<std::string> LineScanner::tail(size_t most) const {
  if (!failure_) return recent_.lines(most);
  const std::vector<std::string>& after_lines = failure_->after;
  const size_t after = std::min(most, after_lines.size());
  std::vector<std::string> lines = recent_.lines(most - after);
  lines.insert(lines.end(), after_lines.end() - static_cast<std::ptrdiff_t>(after), after_lines.end());
  return lines;
}

const Json& LineScanner::captured() const {
  static const Json kNone = Json::object();
  return captured_.is_null() ? kNone : captured_;
}

std::optional<std::string> LineScanner::missing_capture() const {
  for (const auto& c : rules_.captures)
    if (c.required && !captured_.contains(c.name)) return c.name;
  return std::nullopt;
}

// The start of the message when `line` matches a fail_on pattern before the marker.
std::optional<std::string> LineScanner::check_fail_on(std::string_view line) const {
  if (!marker_line_.empty()) return std::nullopt;  // after the marker only captures count
  for (const auto& p : rules_.fail_on)
    if (p.matches(line)) return "the log matched fail_on '" + p.text() + "': ";
  return std::nullopt;
}

void LineScanner::capture(std::string_view line, const StepLog& log) {
  for (const auto& c : rules_.captures) {
    auto value = c.take(line, groups_);
    if (!value) continue;
    log.debug("captured " + c.name + " = " + *value);
    captured_[c.name] = std::move(*value);
  }
}

// Whether `line` is a progress line; logs the bar when the progress moved to another tenth.
bool LineScanner::report_progress(std::string_view line, const StepLog& log) {
  if (!rules_.progress->search(line, groups_) || groups_.size() < 2) return false;
  // (done)/(total) when two groups matched, (percent) when one did; alternatives may leave
  // groups unmatched, so take the matched ones in order.
  std::vector<std::string> groups;
  for (size_t i = 1; i < groups_.size(); ++i)
    if (groups_[i]) groups.emplace_back(*groups_[i]);
  double percent = 0;
  try {
    if (groups.size() >= 2)
      percent = 100.0 * std::stod(groups[0]) / std::stod(groups[1]);
    else if (groups.size() == 1)
      percent = std::stod(groups[0]);
    else
      return false;
  } catch (const std::exception&) {
    return false;
  }
  // 0/0 or "nan" from the log is no progress (and casting NaN to int is undefined; found by fuzzing).
  if (!std::isfinite(percent)) return false;
  percent = std::clamp(percent, 0.0, 100.0);
  progress_percent_ = percent;
  progress_text_.assign(groups_[0].value_or("").substr(0, 200));
  int decile = static_cast<int>(percent / 10);
  if (decile == last_decile_) return true;
  last_decile_ = decile;
  char pct[16];
  std::snprintf(pct, sizeof pct, "%3.0f%%", percent);
  log.info("progress " + progress_bar(percent) + " " + pct + " (" + std::string(groups_[0].value_or("")) + ")");
  return true;
}

}  // namespace flowrun
