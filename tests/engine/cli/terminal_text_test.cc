#include "engine/cli/terminal_text.h"

#include <catch2/catch.hpp>

using namespace flowrun;

TEST_CASE("terminal_safe removes escape sequences and control characters", "[terminal]") {
  // Cursor movement, clear screen, colours, a title (OSC ended by BEL and by ST), a DCS string.
  CHECK(terminal_safe("a\x1b[2Ab\x1b[2J\x1b[1;31mc\x1b[0m") == "abc");
  CHECK(terminal_safe("x\x1b]0;pwned\ay\x1b]8;;http://e\x1b\\z") == "xyz");
  CHECK(terminal_safe("p\x1bP1$r\x1b\\q") == "pq");
  CHECK(terminal_safe("save\x1b"
                      "7 restore\x1b"
                      "8 charset\x1b(B.") == "save restore charset.");
  // C0 (CR, BS, BEL), DEL, C1 (U+009B is an 8-bit CSI), bidi overrides.
  CHECK(terminal_safe("a\rb\bc\ad\x7f"
                      "e") == "abcde");
  CHECK(terminal_safe("f\xc2\x9b"
                      "2Ag") == "f2Ag");
  CHECK(terminal_safe("l\u202Er\u2066i") == "lri");
  CHECK(terminal_safe("tab\there") == "tab here");
  CHECK(terminal_safe("two\nlines") == "twolines");
  CHECK(terminal_safe("two\nlines", true) == "two\nlines");
  // A lone ESC, at the end or before a multi-byte character, goes alone.
  CHECK(terminal_safe("end\x1b") == "end");
  CHECK(terminal_safe("\x1b\xc3\xa9t\xc3\xa9") == "\xc3\xa9t\xc3\xa9");
  // Invalid UTF-8 becomes U+FFFD; valid text is unchanged.
  CHECK(terminal_safe("a\xff"
                      "b") ==
        "a\uFFFD"
        "b");
  CHECK(terminal_safe("frame 42/100 \u2014 caf\u00e9 \u65e5\u672c") == "frame 42/100 \u2014 caf\u00e9 \u65e5\u672c");
}

TEST_CASE("display_width counts wide characters twice and combining marks not at all", "[terminal]") {
  CHECK(display_width("abc") == 3);
  CHECK(display_width("caf\u00e9") == 4);
  CHECK(display_width("e\u0301") == 1);
  CHECK(display_width("\u65e5\u672c") == 4);
  CHECK(display_width("\U0001F680") == 2);
}

TEST_CASE("fit_columns cuts between characters and marks the cut", "[terminal]") {
  CHECK(fit_columns("short", 10) == "short");
  CHECK(fit_columns("exactly10!", 10) == "exactly10!");
  CHECK(fit_columns("a longer line", 6) == "a lon\u2026");
  CHECK(fit_columns("anything", 0).empty());
  // Never inside a multi-byte character: 'é' is two bytes, '日' three and two columns wide.
  CHECK(fit_columns("\u00e9\u00e9\u00e9\u00e9", 3) == "\u00e9\u00e9\u2026");
  CHECK(fit_columns("\u65e5\u65e5\u65e5", 4) == "\u65e5\u2026");
  CHECK(display_width(fit_columns("\u65e5\u65e5\u65e5", 4)) <= 4);
  CHECK(pad_columns("ab", 4) == "ab  ");
  CHECK(pad_columns("abcdef", 4) == "abc\u2026");
}
