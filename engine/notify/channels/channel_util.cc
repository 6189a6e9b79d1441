#include "engine/notify/channels/channel_util.h"

#include "engine/io/step_error.h"
#include "engine/io/utf8.h"

namespace flowrun {

std::string target_string(const Json& target, const char* key) {
  if (!target.is_object()) return "";
  auto it = target.find(key);
  return it != target.end() && it->is_string() ? it->get<std::string>() : "";
}

std::vector<std::string> target_strings(const Json& target, const char* key) {
  std::vector<std::string> out;
  if (!target.is_object()) return out;
  auto it = target.find(key);
  if (it == target.end()) return out;
  if (it->is_string()) out.push_back(it->get<std::string>());
  if (it->is_array())
    for (const Json& v : *it)
      if (v.is_string()) out.push_back(v.get<std::string>());
  return out;
}

namespace {
bool continuation(unsigned char c) { return (c & 0xC0) == 0x80; }
}  // namespace

std::string cut_utf8(std::string_view text, size_t max) {
  std::string valid = valid_utf8(text);
  if (valid.size() <= max) return valid;
  static constexpr std::string_view kEllipsis = "\xE2\x80\xA6";
  if (max < kEllipsis.size()) return "";
  size_t end = max - kEllipsis.size();
  while (end > 0 && continuation(static_cast<unsigned char>(valid[end]))) --end;
  return valid.substr(0, end) + std::string(kEllipsis);
}

std::string tail_utf8(std::string_view text, size_t max) {
  std::string valid = valid_utf8(text);
  if (valid.size() <= max) return valid;
  size_t start = valid.size() - max;
  while (start < valid.size() && continuation(static_cast<unsigned char>(valid[start]))) ++start;
  return valid.substr(start);
}

std::string scrub(std::string text, const std::vector<std::string>& secrets, const std::string& replacement) {
  for (const std::string& secret : secrets) {
    if (secret.empty()) continue;
    for (size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at + replacement.size()))
      text.replace(at, secret.size(), replacement);
  }
  return text;
}

void rethrow_scrubbed(const std::function<void()>& fn, const std::string& what, const std::vector<std::string>& secrets,
                      const std::string& replacement) {
  try {
    fn();
  } catch (const StepError& e) {
    std::string message = scrub(what + ": " + e.what(), secrets, replacement);
    if (e.http_status()) throw StepError::http(e.http_status(), message, e.retry_after());
    if (e.kind() == ErrorKind::kExit) throw StepError::exit(e.exit_code(), message);
    throw StepError(e.kind(), message).with_retry_after(e.retry_after());
  }
}

}  // namespace flowrun
