#include "engine/io/redactor.h"

#include <algorithm>

#include "engine/io/utf8.h"

namespace flowrun {
namespace {

// Percent-encoding as our encoder and curl_easy_escape write it (RFC 3986 unreserved kept);
// `plus_for_space` as HTML forms write a space.
std::string percent_form(std::string_view text, bool upper, bool plus_for_space) {
  const char* hex = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else if (c == ' ' && plus_for_space) {
      out += '+';
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// The inside of the JSON string holding `text` (non-ASCII kept, or as \u escapes).
std::string json_form(const std::string& text, bool ensure_ascii) {
  std::string quoted = Json(text).dump(-1, ' ', ensure_ascii, Json::error_handler_t::replace);
  return quoted.substr(1, quoted.size() - 2);
}

void forms_of(const std::string& text, std::vector<std::string>& out) {
  out.push_back(text);
  for (bool upper : {true, false})
    for (bool plus : {false, true}) out.push_back(percent_form(text, upper, plus));
  out.push_back(json_form(text, false));
  out.push_back(json_form(text, true));
  out.push_back(json_form(json_form(text, false), false));  // a JSON string inside a JSON string
}

}  // namespace

std::vector<std::string> secret_forms(const std::string& value) {
  std::vector<std::string> out;
  forms_of(value, out);
  if (value.find('\n') != std::string::npos) {
    // A PEM key printed by a program arrives a line at a time.
    size_t start = 0;
    while (start <= value.size()) {
      size_t end = value.find('\n', start);
      if (end == std::string::npos) end = value.size();
      std::string line = value.substr(start, end - start);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.size() >= Redactor::kMinSecretLength) forms_of(line, out);
      start = end + 1;
    }
  }
  return out;
}

void Redactor::add_form(const std::string& form) {
  if (form.size() < kMinSecretLength) return;
  if (std::find(forms_.begin(), forms_.end(), form) != forms_.end()) return;
  forms_.push_back(form);
}

bool Redactor::add_secret(const std::string& value) {
  if (value.empty()) return true;  // nothing to hide
  if (value.size() < kMinSecretLength) return false;
  for (const auto& form : secret_forms(value)) add_form(form);
  std::stable_sort(forms_.begin(), forms_.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  return true;
}

std::string Redactor::redact(std::string_view text) const {
  std::string out(text);
  for (const auto& form : forms_) {
    size_t pos = 0;
    while ((pos = out.find(form, pos)) != std::string::npos) {
      out.replace(pos, form.size(), "***");
      pos += 3;
    }
  }
  return out;
}

Json Redactor::redact_json(const Json& value) const {
  if (forms_.empty()) return value;
  if (value.is_string()) return redact(value.get_ref<const std::string&>());
  if (value.is_array()) {
    Json out = Json::array();
    for (const auto& item : value) out.push_back(redact_json(item));
    return out;
  }
  if (value.is_object()) {
    // Keys hold outside text too (a parsed body, a Lua table, a reflected header). Two keys that
    // redact alike both stay, the later one numbered.
    Json out = Json::object();
    for (const auto& [key, item] : value.items()) {
      std::string k = redact(key);
      if (out.contains(k)) {
        int n = 2;
        while (out.contains(k + "#" + std::to_string(n))) ++n;
        k += "#" + std::to_string(n);
      }
      out[k] = redact_json(item);
    }
    return out;
  }
  return value;
}

std::string Redactor::redact_json_text(const Json& value) const {
  if (forms_.empty()) return dump_json_sized(value);
  return dump_json_sized(redact_json(value));
}

}  // namespace flowrun
