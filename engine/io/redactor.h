#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "engine/io/json.h"

namespace flowrun {

// Replaces declared secrets with "***" in text and in JSON (keys as well as values), in every
// form a secret takes on its way out: as it is, percent-encoded (upper- or lower-case hex, with
// "+" for a space), JSON-escaped, and each line of a multi-line secret. Filled before the run
// starts, then read-only, so it is shared by every log sink and thread without a lock.
class Redactor {
 public:
  // A shorter secret cannot be redacted without mangling ordinary text ("1", "ok"), so it is refused.
  static constexpr size_t kMinSecretLength = 4;

  // False (and nothing added) when `value` is 1 to kMinSecretLength - 1 bytes long; an empty
  // value has nothing to hide and is accepted.
  bool add_secret(const std::string& value);
  std::string redact(std::string_view text) const;
  Json redact_json(const Json& value) const;
  // dump_json(redact_json(value)), without the redacted copy when there is nothing to hide, in a
  // string of exactly its size (dump_json_sized).
  std::string redact_json_text(const Json& value) const;
  bool empty() const { return forms_.empty(); }
  // The forms searched for, longest first (for tests).
  const std::vector<std::string>& forms() const { return forms_; }

 private:
  void add_form(const std::string& form);
  std::vector<std::string> forms_;  // longest first, so a form containing another wins
};

// The ways a secret appears in text flowrun writes (see Redactor); `value` itself first.
std::vector<std::string> secret_forms(const std::string& value);

}  // namespace flowrun
