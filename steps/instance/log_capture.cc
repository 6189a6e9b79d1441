#include "steps/instance/log_capture.h"

#include <algorithm>

#include "engine/io/step_error.h"

namespace flowrun {
namespace {

CaptureRule rule_from(const std::string& name, const Json& v) {
  const Json pattern = v.is_object() ? v.value("pattern", Json()) : v;
  if (!pattern.is_string()) throw StepError::permanent("capture '" + name + "' needs a pattern");
  CaptureRule r{UserRegex(pattern.get<std::string>()), std::nullopt};
  if (v.is_object() && v.value("validate", Json()).is_string()) r.validate.emplace(v["validate"].get<std::string>());
  return r;
}

}  // namespace

std::optional<std::string> Capture::take(std::string_view line, RegexGroups& groups) const {
  for (const auto& rule : rules) {
    std::optional<std::string> found;
    // Every match on the line, so "copy https://a/input/x to https://b/output/y" yields the second.
    std::string_view rest = line;
    while (rule.pattern.search(rest, groups)) {
      std::string_view value = groups[0].value_or("");
      for (size_t i = 1; i < groups.size(); ++i)
        if (groups[i]) {
          value = *groups[i];
          break;
        }
      if (!rule.validate || rule.validate->search(value)) found.emplace(value);
      const std::string_view whole = groups[0].value_or("");
      size_t end = static_cast<size_t>(whole.data() - rest.data()) + std::max<size_t>(whole.size(), 1);
      if (end >= rest.size()) break;
      rest.remove_prefix(end);
    }
    if (found) return found;
  }
  return std::nullopt;
}

std::vector<Capture> captures_from(const Json& spec) {
  std::vector<Capture> out;
  if (!spec.is_object()) return out;
  for (const auto& [name, v] : spec.items()) {
    Capture c;
    c.name = name;
    if (v.is_array()) {
      if (v.empty()) throw StepError::permanent("capture '" + name + "' has no rules");
      for (const Json& r : v) c.rules.push_back(rule_from(name, r));
    } else {
      c.rules.push_back(rule_from(name, v));
      if (v.is_object() && v.value("required", Json()).is_boolean()) c.required = v["required"];
    }
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<Json> capture_regexes(const Json& value) {
  std::vector<Json> out;
  auto add = [&](const Json& r) {
    out.push_back(r.is_object() ? r.value("pattern", Json()) : r);
    if (r.is_object()) out.push_back(r.value("validate", Json()));
  };
  if (value.is_array()) {
    for (const Json& r : value) add(r);
  } else {
    add(value);
  }
  return out;
}

void RecentLines::push(std::string_view line) {
  if (lengths_.empty()) return;
  static_assert(kContextLineMax <= UINT16_MAX, "a kept line's length is a uint16_t");
  line = line.substr(0, kContextLineMax);
  ++pushed_;
  if (count_ == lengths_.size()) {  // the oldest goes
    front_ += lengths_[next_];
    --count_;
  }
  if (text_.size() + line.size() > text_.capacity()) {
    // Room by moving the kept lines to the front, and only when that is not enough a bigger
    // buffer, a quarter larger than needed: it settles at about the most the lines ever took.
    text_.erase(text_.begin(), text_.begin() + static_cast<std::ptrdiff_t>(front_));
    front_ = 0;
    const size_t needed = text_.size() + line.size();
    if (needed > text_.capacity()) text_.reserve(needed + needed / 4);
  }
  text_.insert(text_.end(), line.begin(), line.end());
  lengths_[next_] = static_cast<uint16_t>(line.size());
  next_ = (next_ + 1) % lengths_.size();
  ++count_;
}

void RecentLines::keep_last(size_t most) {
  while (count_ > most) {  // the oldest go
    front_ += lengths_[(next_ + lengths_.size() - count_) % lengths_.size()];
    --count_;
  }
  // The room a read's extra lines took is given back once it is more than twice what is kept;
  // below that it is reused by the next read, which would grow it again (a waiting monitor kept
  // rebuilding its lines after every poll).
  const size_t kept = text_.size() - front_;
  if (text_.capacity() <= 2 * kept + kRoomKeptAnyway) return;
  std::vector<char> smaller;
  smaller.reserve(kept + kept / 4);
  smaller.insert(smaller.end(), text_.begin() + static_cast<std::ptrdiff_t>(front_), text_.end());
  text_.swap(smaller);
  front_ = 0;
}

std::vector<std::string> RecentLines::lines(size_t most) const {
  const size_t n = std::min(most, count_);
  std::vector<std::string> out;
  out.reserve(n);
  size_t at = front_;
  for (size_t i = 0; i < count_; ++i) {
    const size_t length = lengths_[(next_ + lengths_.size() - count_ + i) % lengths_.size()];
    if (i >= count_ - n) out.emplace_back(text_.data() + at, length);
    at += length;
  }
  return out;
}

std::string clip_line(std::string_view line) {
  if (line.size() <= kContextLineMax) return std::string(line);
  return std::string(line.substr(0, kContextLineMax)) + "...";
}

std::string failure_line(std::string_view matched, const std::vector<std::string>& after) {
  if (matched.find("Traceback (most recent call last)") != std::string_view::npos)
    for (const auto& line : after)
      if (!line.empty() && line[0] != ' ' && line[0] != '\t') return clip_line(line);
  return clip_line(matched);
}

}  // namespace flowrun
