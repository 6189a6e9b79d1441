#include "engine/io/user_regex.h"

#include <re2/re2.h>

namespace flowrun {
namespace {

RE2::Options options() {
  RE2::Options o;
  o.set_encoding(RE2::Options::EncodingLatin1);  // bytes, as std::regex matched them
  o.set_log_errors(false);
  return o;
}

// RE2 reads a Latin-1 pattern byte by byte, so a UTF-8 literal such as "é" still matches the
// same two bytes in the text. A pattern that does not compile is !ok(), its error() says why.
std::shared_ptr<const re2::RE2> compile(const std::string& pattern) {
  return std::make_shared<const re2::RE2>(pattern, options());
}

}  // namespace

UserRegex::UserRegex(const std::string& pattern) : pattern_(pattern), re_(compile(pattern)) {
  if (!re_->ok()) throw RegexError("'" + pattern + "' is not a valid regex: " + re_->error());
}

std::optional<std::string> UserRegex::syntax_error(const std::string& pattern) {
  const auto re = compile(pattern);
  if (re->ok()) return std::nullopt;
  return re->error();
}

bool UserRegex::search(std::string_view text) const {
  return re_->Match(re2::StringPiece(text.data(), text.size()), 0, text.size(), RE2::UNANCHORED, nullptr, 0);
}

bool UserRegex::search(std::string_view text, RegexGroups& groups) const {
  const int n = re_->NumberOfCapturingGroups() + 1;
  std::vector<re2::StringPiece> parts(static_cast<size_t>(n));
  groups.clear();
  if (!re_->Match(re2::StringPiece(text.data(), text.size()), 0, text.size(), RE2::UNANCHORED, parts.data(), n))
    return false;
  for (const auto& p : parts)
    groups.push_back(p.data() ? std::optional<std::string_view>(std::string_view(p.data(), p.size())) : std::nullopt);
  return true;
}

int UserRegex::groups() const { return re_->NumberOfCapturingGroups(); }

}  // namespace flowrun
