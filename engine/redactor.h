#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "engine/json.h"

namespace flowrun {

// Replaces the values of declared secrets with "***". Filled before the run starts, then
// read-only, so it is shared by every log sink and thread without a lock.
class Redactor {
 public:
  // Values shorter than 3 characters are ignored: redacting "1" would mangle every number.
  void add_secret(const std::string& value);
  std::string redact(std::string_view text) const;
  Json redact_json(const Json& value) const;
  bool empty() const { return secrets_.empty(); }

 private:
  std::vector<std::string> secrets_;  // longest first, so a secret containing another wins
};

}  // namespace flowrun
