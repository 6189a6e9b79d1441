#include "engine/redactor.h"

#include <algorithm>

namespace flowrun {

void Redactor::add_secret(const std::string& value) {
  if (value.size() < 3) return;
  if (std::find(secrets_.begin(), secrets_.end(), value) != secrets_.end()) return;
  secrets_.push_back(value);
  std::sort(secrets_.begin(), secrets_.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
}

std::string Redactor::redact(std::string_view text) const {
  std::string out(text);
  for (const auto& secret : secrets_) {
    size_t pos = 0;
    while ((pos = out.find(secret, pos)) != std::string::npos) {
      out.replace(pos, secret.size(), "***");
      pos += 3;
    }
  }
  return out;
}

Json Redactor::redact_json(const Json& value) const {
  if (secrets_.empty()) return value;
  if (value.is_string()) return redact(value.get_ref<const std::string&>());
  if (value.is_array() || value.is_object()) {
    Json out = value;
    for (auto& item : out) item = redact_json(item);
    return out;
  }
  return value;
}

}  // namespace flowrun
