#pragma once
// Text from outside (process output, HTTP bodies, Lua strings, workflow files) is bytes until it
// becomes JSON; these make it valid UTF-8 there, so nlohmann's dump() never throws on it.
#include <optional>
#include <string>
#include <string_view>

#include "engine/io/json.h"

namespace flowrun {

// The length of the longest prefix of `text` that is valid UTF-8 (no overlongs, no surrogates,
// nothing above U+10FFFF); text.size() when all of it is.
size_t valid_utf8_prefix(std::string_view text);

// `text` with every invalid byte sequence replaced by U+FFFD (one per maximal invalid subpart,
// as the Unicode standard recommends). Returns the text unchanged when it is valid.
std::string valid_utf8(std::string_view text);

// Makes every string in `value`, object keys included, valid UTF-8 in place.
void make_valid_utf8(Json& value);

// A 1-based line and column (counted in bytes) of the first invalid byte, or nullopt when the
// whole text is valid UTF-8: the loader names it in a diagnostic.
struct TextPosition {
  int line = 1;
  int col = 1;
};
std::optional<TextPosition> first_invalid_utf8(std::string_view text);

// dump() that never throws on invalid UTF-8 (it writes U+FFFD instead).
std::string dump_json(const Json& value, int indent = -1);
// dump_json(value) in a string of exactly its size: written twice, counted then kept, so a text
// of MiBs (a for_each's outputs) never has a growing buffer and its copy at once.
std::string dump_json_sized(const Json& value);

}  // namespace flowrun
