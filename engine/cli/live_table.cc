#include "engine/cli/live_table.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "engine/cli/terminal_text.h"
#include "engine/io/utf8.h"

namespace flowrun {
namespace {

constexpr size_t kBarCells = 10;
constexpr size_t kItemColumns = 24;
constexpr size_t kStatusColumns = 10;
constexpr size_t kProgressTextColumns = 18;

bool ends_item(const std::string& status) {
  return status == "succeeded" || status == "failed" || status == "cancelled" || status == "skipped";
}

std::string text_of(const Json& value) {
  if (value.is_string()) return terminal_safe(value.get_ref<const std::string&>());
  if (value.is_null()) return "";
  return terminal_safe(dump_json(value));
}

// A path or a URL shows its last part, which is what tells items apart.
std::string item_label(const Json& value) {
  std::string text = text_of(value);
  while (text.size() > 1 && text.back() == '/') text.pop_back();
  const auto slash = text.rfind('/');
  if (value.is_string() && slash != std::string::npos) text = text.substr(slash + 1);
  return text;
}

double number_or(const Json& value, double fallback) {
  if (value.is_number()) {
    const double v = value.get<double>();
    if (std::isfinite(v)) return v;
  }
  return fallback;
}

std::string bar(std::optional<double> percent) {
  const size_t filled = percent ? static_cast<size_t>(std::clamp(*percent, 0.0, 100.0) / 100.0 * kBarCells) : 0;
  return "[" + std::string(filled, '#') + std::string(kBarCells - filled, percent ? '.' : ' ') + "]";
}

std::string percent_text(std::optional<double> percent) {
  if (!percent) return "   -";
  char text[16];
  std::snprintf(text, sizeof text, "%3.0f%%", std::clamp(*percent, 0.0, 100.0));
  return text;
}

std::string right(const std::string& text, size_t columns) {
  const size_t width = display_width(text);
  return width >= columns ? text : std::string(columns - width, ' ') + text;
}

// The percent of a line scanner's "progress [####......]  35% (frame 7/20)" line.
std::optional<double> progress_of_line(std::string_view message) {
  if (message.rfind("progress [", 0) != 0) return std::nullopt;
  const auto close = message.find("] ");
  if (close == std::string_view::npos) return std::nullopt;
  const std::string rest(message.substr(close + 2, 16));
  char* end = nullptr;
  const double v = std::strtod(rest.c_str(), &end);
  if (end == rest.c_str() || *end != '%' || !std::isfinite(v)) return std::nullopt;
  return std::clamp(v, 0.0, 100.0);
}

}  // namespace

std::string item_path_of(std::string_view path, std::string* group) {
  // The last "[digits]" that ends the path or a segment of it.
  for (size_t close = path.rfind(']'); close != std::string_view::npos && close > 0;
       close = path.rfind(']', close - 1)) {
    if (close + 1 < path.size() && path[close + 1] != '.') continue;
    const auto open = path.rfind('[', close);
    if (open == std::string_view::npos || open == 0 || open + 1 == close) continue;
    const std::string_view digits = path.substr(open + 1, close - open - 1);
    if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }) || digits.size() > 9)
      continue;
    if (group) *group = std::string(path.substr(0, open));
    return std::string(path.substr(0, close + 1));
  }
  return "";
}

double LiveItem::cost(TimePoint now) const {
  if (!billed_since || price_per_hour <= 0) return 0;
  const TimePoint until = billed_until.value_or(now);
  const double hours = std::chrono::duration<double>(until - *billed_since).count() / 3600.0;
  return std::max(0.0, hours) * price_per_hour;
}

std::string format_elapsed(Duration d) {
  const auto total = std::max<long long>(0, std::chrono::duration_cast<std::chrono::seconds>(d).count());
  char text[32];
  if (total >= 3600)
    std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", total / 3600, total / 60 % 60, total % 60);
  else
    std::snprintf(text, sizeof text, "%lld:%02lld", total / 60, total % 60);
  return text;
}

std::string format_cost(double dollars) {
  char text[32];
  std::snprintf(text, sizeof text, dollars < 10 ? "$%.3f" : "$%.2f", dollars);
  return text;
}

LiveItem* LiveTable::item_for(const std::string& path, TimePoint now) {
  std::string group_path;
  const std::string item_path = item_path_of(path, &group_path);
  if (item_path.empty()) return nullptr;
  const int index = std::atoi(item_path.c_str() + group_path.size() + 1);
  auto [group_it, new_group] = groups_.try_emplace(group_path);
  Group& group = group_it->second;
  if (new_group) group.started = now;
  if (group.ended.count(index)) return nullptr;  // a late report of an item that ended
  auto [it, added] = group.items.try_emplace(index);
  if (added) {
    it->second.path = item_path;
    it->second.index = index;
    it->second.started = now;
  }
  return &it->second;
}

void LiveTable::end_item(Group& group, int index, const std::string& status, TimePoint now) {
  auto it = group.items.find(index);
  if (it == group.items.end()) return;
  const LiveItem& item = it->second;
  const double cost = item.cost(now);
  std::string line = item.path;
  if (!item.item.empty()) line += "  " + item.item;
  line += "  " + (status == "failed" ? std::string("FAILED") : status) + " after " + format_elapsed(now - item.started);
  if (cost > 0) line += ", " + format_cost(cost);
  ended_lines_.push_back(std::move(line));
  group.ended_cost += cost;
  ++group.ended_by_status[status];
  group.ended.insert(index);
  group.items.erase(it);
}

void LiveTable::step_started(const std::string& path, TimePoint now) { item_for(path, now); }

void LiveTable::step_finished(const std::string& path, const std::string& status, TimePoint now) {
  auto group = groups_.find(path);
  if (group != groups_.end()) {
    // The for_each ended: an item no event ended is taken as done, or failed when a step of it failed.
    while (!group->second.items.empty()) {
      auto& [index, item] = *group->second.items.begin();
      end_item(group->second, index,
               item.failed_steps > 0   ? "failed"
               : status == "cancelled" ? "cancelled"
                                       : "done",
               now);
    }
    groups_.erase(group);
    return;
  }
  if (status != "failed") return;
  if (LiveItem* item = item_for(path, now)) ++item->failed_steps;
}

void LiveTable::event(const std::string& path, const std::string& kind, const Json& data, TimePoint now) {
  const Json& fields = data.is_object() ? data : Json::object();
  if (kind == "item_succeeded" || kind == "item_failed") {
    std::string item_path = path;
    if (item_path_of(path).empty() && fields.contains("index") && fields["index"].is_number_integer())
      item_path = path + "[" + std::to_string(fields["index"].get<long long>()) + "]";
    std::string group_path;
    if (item_path_of(item_path, &group_path) != item_path) return;
    LiveItem* item = item_for(item_path, now);
    if (!item) return;
    if (fields.contains("item") && item->item.empty()) item->item = item_label(fields["item"]);
    end_item(groups_[group_path], item->index, kind == "item_succeeded" ? "succeeded" : "failed", now);
    return;
  }
  LiveItem* item = item_for(path, now);
  if (!item) return;
  if (kind == "instance_started") {
    item->billed_since = now;
    item->billed_until.reset();
    item->price_per_hour = number_or(fields.value("price_per_hour", Json()), item->price_per_hour);
    if (fields.contains("instance")) item->instance = text_of(fields["instance"]);
  } else if (kind == "instance_destroyed") {
    if (item->billed_since) item->billed_until = now;
  }
}

void LiveTable::live(const std::string& path, const Json& patch, TimePoint now) {
  if (!patch.is_object()) return;
  LiveItem* item = item_for(path, now);
  if (!item) return;
  if (patch.contains("item")) item->item = item_label(patch["item"]);
  if (patch.contains("progress")) {
    const Json& p = patch["progress"];
    if (p.is_null())
      item->progress.reset();
    else if (p.is_number() && std::isfinite(p.get<double>()))
      item->progress = std::clamp(p.get<double>(), 0.0, 100.0);
  }
  if (patch.contains("progress_text")) item->progress_text = text_of(patch["progress_text"]);
  if (patch.contains("last_line")) item->last_line = text_of(patch["last_line"]);
  if (patch.contains("instance")) item->instance = text_of(patch["instance"]);
  if (patch.contains("price_per_hour")) {
    item->price_per_hour = number_or(patch["price_per_hour"], item->price_per_hour);
    if (!item->billed_since && item->price_per_hour > 0) item->billed_since = now;
  }
  if (patch.contains("status") && patch["status"].is_string()) {
    const std::string status = terminal_safe(patch["status"].get<std::string>());
    std::string group_path;
    if (ends_item(status) && item_path_of(path, &group_path) == path)
      end_item(groups_[group_path], item->index, status, now);
    else if (!ends_item(status))
      item->status = status;
  }
}

bool LiveTable::log_line(const ConsoleLine& line, TimePoint now) {
  if (line.level == LogLevel::kDebug) return false;
  // A line of the for_each step itself ("item 2 failed") is no item's.
  LiveItem* item = item_path_of(line.logger).empty() ? nullptr : item_for(std::string(line.logger), now);
  if (!item) return false;
  if (auto percent = progress_of_line(line.message)) {
    item->progress = percent;
    return line.level == LogLevel::kInfo;
  }
  if (line.level == LogLevel::kInfo && line.message.rfind("still waiting: ", 0) == 0) return true;
  // The last line of a message of several.
  std::string_view last = line.message;
  while (!last.empty() && last.back() == '\n') last.remove_suffix(1);
  if (const auto newline = last.rfind('\n'); newline != std::string_view::npos) last = last.substr(newline + 1);
  item->last_line = terminal_safe(last.substr(0, 400));
  return false;
}

bool LiveTable::visible() const { return !groups_.empty(); }

std::vector<std::string> LiveTable::render(TimePoint now, size_t columns, size_t max_lines) const {
  std::vector<std::string> lines;
  max_lines = std::max<size_t>(max_lines, 2);
  size_t hidden = 0;
  for (const auto& [group_path, group] : groups_) {
    const int running = static_cast<int>(group.items.size());
    double cost = group.ended_cost;
    for (const auto& [index, item] : group.items) cost += item.cost(now);
    std::string head = terminal_safe(group_path) + ": " + std::to_string(running) + " running";
    for (const auto& [status, count] : group.ended_by_status) head += ", " + std::to_string(count) + " " + status;
    head += "  " + format_elapsed(now - group.started);
    if (cost > 0) head += "  " + format_cost(cost);
    if (lines.size() + 1 >= max_lines) {
      hidden += group.items.size();
      continue;
    }
    lines.push_back(fit_columns(head, columns));

    size_t path_columns = 0, item_columns = 0, text_columns = 0;
    bool any_cost = false;
    for (const auto& [index, item] : group.items) {
      any_cost = any_cost || item.cost(now) > 0;
      path_columns = std::max(path_columns, display_width(item.path));
      item_columns = std::max(item_columns, std::min(kItemColumns, display_width(item.item)));
      text_columns = std::max(text_columns, std::min(kProgressTextColumns, display_width(item.progress_text)));
    }
    size_t left = group.items.size();
    for (const auto& [index, item] : group.items) {
      // Keep the last line for "+ N more running" when not every row fits.
      if (lines.size() + (left > 1 ? 2 : 1) > max_lines) break;
      --left;
      std::string row = "  " + pad_columns(item.status, kStatusColumns) + " " + pad_columns(item.path, path_columns);
      if (item_columns) row += " " + pad_columns(item.item, item_columns);
      row += " " + bar(item.progress) + " " + percent_text(item.progress);
      if (text_columns) row += " " + pad_columns(item.progress_text, text_columns);
      row += " " + right(format_elapsed(now - item.started), 7);
      const double item_cost = item.cost(now);
      if (any_cost) row += " " + right(item_cost > 0 ? format_cost(item_cost) : "", 8);
      if (!item.last_line.empty()) row += "  " + item.last_line;
      while (!row.empty() && row.back() == ' ') row.pop_back();
      lines.push_back(fit_columns(row, columns));
    }
    hidden += left;
  }
  if (hidden > 0) {
    std::string more = "  + " + std::to_string(hidden) + " more running";
    if (lines.size() >= max_lines)
      lines.back() = more;
    else
      lines.push_back(more);
    lines.back() = fit_columns(lines.back(), columns);
  }
  return lines;
}

std::vector<std::string> LiveTable::take_ended_lines(size_t columns) {
  std::vector<std::string> lines;
  lines.swap(ended_lines_);
  for (auto& line : lines) line = fit_columns(line, columns);
  return lines;
}

}  // namespace flowrun
