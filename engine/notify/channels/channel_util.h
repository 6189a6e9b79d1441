#pragma once
// What the built-in channels share: reading their settings, bounding text, and keeping the
// target's secrets (URLs, passwords) out of the error messages the outbox records.
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/io/json.h"

namespace flowrun {

// target[key] when it is a string, else "".
std::string target_string(const Json& target, const char* key);
// target[key] as a list of strings: a string is a list of one; anything else is an empty list.
std::vector<std::string> target_strings(const Json& target, const char* key);

// The longest prefix of `text` of at most `max` bytes that ends on a UTF-8 boundary, invalid
// bytes replaced; "…" marks a cut (counted in `max`).
std::string cut_utf8(std::string_view text, size_t max);
// The last at most `max` bytes of `text`, starting on a UTF-8 boundary, invalid bytes replaced.
std::string tail_utf8(std::string_view text, size_t max);

// `text` with every occurrence of each non-empty secret replaced by `replacement`.
std::string scrub(std::string text, const std::vector<std::string>& secrets, const std::string& replacement);

// Runs `fn`; a StepError it throws is thrown again with the same kind, HTTP status and
// Retry-After, its message prefixed by `what` and scrubbed of `secrets`.
void rethrow_scrubbed(const std::function<void()>& fn, const std::string& what, const std::vector<std::string>& secrets,
                      const std::string& replacement);

}  // namespace flowrun
