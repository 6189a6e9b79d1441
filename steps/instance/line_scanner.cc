#include "steps/instance/line_scanner.h"

#include <string.h>  // memmem (GNU)

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
  } else {
    throw StepError::permanent("a pattern is a string or {regex: \"...\"}, not " + v.dump());
  }
  return p;
}

bool LinePattern::matches(std::string_view line) const {
  if (!regex_) return line.find(text_) != std::string_view::npos;
  return regex_->search(line);
}

bool LinePattern::occurs_in(std::string_view text) const {
  return ::memmem(text.data(), text.size(), text_.data(), text_.size()) != nullptr;
}

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

LineScanner::LineScanner(ScanRules rules, int context_lines)
    : rules_(std::move(rules)), recent_(static_cast<size_t>(std::clamp(context_lines, 0, 1000)) + 1) {}

bool LineScanner::scan(std::string_view line, const StepLog& log, const std::function<void(std::string_view)>& show) {
  if (failure_) {
    // The rest of this read is context (a traceback's last line names the error).
    if (show) show(line);
    after_.push_back(clip_line(line));
    return after_.size() < kMaxLinesAfter;
  }
  last_line_.assign(line);
  recent_.push(line);
  failure_ = check_fail_on(line);
  // A progress line is shown as the bar (once per change), not as itself too.
  const bool progress_line = !failure_ && marker_line_.empty() && rules_.progress && report_progress(line, log);
  if (show && !progress_line) show(line);
  if (failure_) {
    failed_line_.assign(line);
    return true;
  }
  capture(line, log);
  if (marker_line_.empty() && rules_.marker.matches(line)) marker_line_.assign(line);
  return true;
}

std::function<bool(std::string_view)> LineScanner::prefilter() const {
  if (!rules_.captures.empty() || rules_.progress || !marker_line_.empty() || rules_.marker.is_regex()) return {};
  for (const auto& p : rules_.fail_on)
    if (p.is_regex()) return {};
  return [this](std::string_view lines) {
    if (rules_.marker.occurs_in(lines)) return true;
    for (const auto& p : rules_.fail_on)
      if (p.occurs_in(lines)) return true;
    return false;
  };
}

std::optional<LineScanner::Failure> LineScanner::failure() const {
  if (!failure_) return std::nullopt;
  std::vector<std::string> context = recent_.lines();
  context.insert(context.end(), after_.begin(), after_.end());
  return Failure{*failure_ + failure_line(failed_line_, after_), std::move(context)};
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
