#pragma once
// Text on a terminal: what is safe to print, and how many columns it takes.
#include <cstddef>
#include <string>
#include <string_view>

namespace flowrun {

// `text` safe to print on a terminal: invalid UTF-8 replaced by U+FFFD, escape sequences (CSI,
// OSC, DCS and two-byte ESC ones) and control characters (C0, DEL, C1, bidi overrides) removed,
// a tab turned into a space; so a hostile log line cannot move the cursor or change colours.
// With `keep_newlines`, a line feed stays (a log message of several lines).
std::string terminal_safe(std::string_view text, bool keep_newlines = false);

// The columns that safe text takes: wide characters (CJK, most emoji) count two, combining marks none.
size_t display_width(std::string_view text);

// The longest prefix of safe text that fits in `columns`, cut between characters (never inside a
// multi-byte one), ending in "…" when something was cut.
std::string fit_columns(std::string_view text, size_t columns);

// Safe text cut or padded with spaces to exactly `columns`.
std::string pad_columns(std::string_view text, size_t columns);

}  // namespace flowrun
