#include "engine/io/line_regex_set.h"

#include <re2/re2.h>
#include <re2/set.h>

namespace flowrun {
namespace {

RE2::Options options() {
  RE2::Options o;
  o.set_encoding(RE2::Options::EncodingLatin1);  // bytes, as UserRegex matches them
  o.set_log_errors(false);
  o.set_max_mem(LineRegexSet::kMaxMem);
  return o;
}

// Whether `pattern` anchors to the text rather than to its line (\A, \z), or may switch
// multi-line mode off ((?-m), (?s-m:...)): then a run of lines does not stand for each line.
bool text_anchored(const std::string& pattern) {
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\') {
      if (i + 1 < pattern.size() && (pattern[i + 1] == 'A' || pattern[i + 1] == 'z')) return true;
      ++i;
    } else if (pattern.compare(i, 2, "(?") == 0) {
      const size_t end = pattern.find_first_of(":)", i + 2);
      const std::string flags = pattern.substr(i + 2, end == std::string::npos ? std::string::npos : end - i - 2);
      const size_t minus = flags.find('-');
      if (minus != std::string::npos && flags.find('m', minus) != std::string::npos) return true;
    }
  }
  return false;
}

}  // namespace

struct LineRegexSet::Impl {
  RE2::Set set{options(), RE2::UNANCHORED};
};

LineRegexSet::LineRegexSet() : impl_(std::make_unique<Impl>()) {}
LineRegexSet::~LineRegexSet() = default;
LineRegexSet::LineRegexSet(LineRegexSet&&) noexcept = default;
LineRegexSet& LineRegexSet::operator=(LineRegexSet&&) noexcept = default;

int LineRegexSet::add_literal(std::string_view text) {
  return add_regex(RE2::QuoteMeta(re2::StringPiece(text.data(), text.size())));
}

int LineRegexSet::add_regex(const std::string& pattern) {
  if (text_anchored(pattern)) {
    refused_ = true;
    return -1;
  }
  // (?m): ^ and $ match at each line's start and end, as they do on the line alone.
  std::string error;
  const int index = impl_->set.Add("(?m)" + pattern, &error);
  if (index < 0) refused_ = true;
  return index;
}

bool LineRegexSet::compile() {
  compiled_ = !refused_ && impl_->set.Compile();
  return compiled_;
}

bool LineRegexSet::occurring(std::string_view lines, std::vector<int>& found) const {
  found.clear();
  if (!compiled_) return false;
  RE2::Set::ErrorInfo info{};
  if (impl_->set.Match(re2::StringPiece(lines.data(), lines.size()), &found, &info)) return true;
  found.clear();
  return info.kind == RE2::Set::kNoError;
}

}  // namespace flowrun
