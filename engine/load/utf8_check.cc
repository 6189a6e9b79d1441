#include "engine/load/utf8_check.h"

#include <cstdio>

#include "engine/io/utf8.h"

namespace flowrun {

void check_valid_utf8(std::string_view text, const std::string& file, Diagnostics& diags) {
  const auto pos = first_invalid_utf8(text);
  if (!pos) return;
  char byte[8];
  std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned char>(text[valid_utf8_prefix(text)]));
  diags.error({file, pos->line, pos->col}, std::string("the file is not valid UTF-8: byte ") + byte + " here",
              "save the file as UTF-8 (bytes that are not text cannot be written in a workflow)");
}

}  // namespace flowrun
