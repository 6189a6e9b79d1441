#include "engine/io/http_reason.h"

#include <algorithm>
#include <cctype>

#include "engine/io/json.h"
#include "engine/io/json_parse.h"

namespace flowrun {
namespace {

constexpr size_t kMaxReason = 200;

std::string one_line(std::string_view text) {
  std::string out;
  bool blank = false;
  for (char c : text) {
    const bool space = c == '\n' || c == '\r' || c == '\t' || c == ' ';
    if (space) {
      blank = !out.empty();
      continue;
    }
    if (blank) out += ' ';
    blank = false;
    out += c;
    if (out.size() >= kMaxReason) return out + "...";
  }
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

// The text inside the first <tag ...>...</tag> of an HTML page, or empty.
std::string element_text(std::string_view html, const std::string& lowered, const std::string& tag) {
  size_t open = lowered.find("<" + tag);
  if (open == std::string::npos) return {};
  size_t start = lowered.find('>', open);
  if (start == std::string::npos) return {};
  size_t end = lowered.find("</" + tag, start);
  if (end == std::string::npos) return {};
  return one_line(html.substr(start + 1, end - start - 1));
}

std::string json_reason(const Json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (!j.is_object()) return {};
  if (j.contains("error") && j["error"].is_object()) {  // Anthropic, OpenAI, Google
    std::string inner = json_reason(j["error"]);
    if (!inner.empty()) return inner;
  }
  for (const char* key : {"message", "msg", "detail", "error", "error_description"}) {
    if (!j.contains(key) || !j[key].is_string()) continue;
    // {"type": "authentication_error", "message": ...}: the type says as much as the message.
    if (j.contains("type") && j["type"].is_string() && j["type"] != "error")
      return j["type"].get<std::string>() + ": " + j[key].get<std::string>();
    return j[key].get<std::string>();
  }
  return {};
}

}  // namespace

std::string error_reason(std::string_view body) {
  size_t first = body.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  if (body[first] == '{' && body.size() <= (1u << 20)) {
    Json j;
    try {
      j = parse_json_limited(body);
    } catch (const std::exception&) {
      j = Json(Json::value_t::discarded);  // nested too deep: read as text
    }
    if (!j.is_discarded()) {
      std::string reason = one_line(json_reason(j));
      if (!reason.empty()) return reason;
    }
  }
  if (body[first] == '<') {
    std::string lowered = lower(body.substr(0, 64u << 10));
    if (lowered.find("<html") != std::string::npos || lowered.find("<!doctype") != std::string::npos) {
      for (const char* tag : {"title", "h1"}) {
        std::string text = element_text(body, lowered, tag);
        if (!text.empty()) return text;
      }
      return "an HTML page";
    }
  }
  return one_line(body.substr(first, 4 * kMaxReason));
}

}  // namespace flowrun
