#pragma once
// Byte sizes as users write them (max_output, max_body) and as messages show them.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "engine/io/json.h"

namespace flowrun {

// "16MiB", "512 KiB", "1GiB" (powers of 1024), "2MB", "100kB" (powers of 1000) or a number of
// bytes; nullopt when it is none of these, zero, or over 1 TiB.
std::optional<size_t> parse_byte_size(std::string_view text);
// The same for a parameter: a whole number of bytes, or a string as above.
std::optional<size_t> byte_size_param(const Json& value);

// "16 MiB", "512 KiB", "100 bytes": the exact size in the largest unit that divides it.
std::string format_bytes(size_t bytes);

}  // namespace flowrun
