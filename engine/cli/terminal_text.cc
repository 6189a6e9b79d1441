#include "engine/cli/terminal_text.h"

#include "engine/io/utf8.h"

namespace flowrun {
namespace {

// Decodes the character at `i` of valid UTF-8 and moves `i` past it.
char32_t next_char(std::string_view text, size_t& i) {
  const auto b = static_cast<unsigned char>(text[i]);
  size_t n = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
  if (i + n > text.size()) n = text.size() - i;
  char32_t c = n == 1 ? b : n == 2 ? (b & 0x1F) : n == 3 ? (b & 0x0F) : (b & 0x07);
  for (size_t k = 1; k < n; ++k) c = (c << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
  i += n;
  return c;
}

bool is_control(char32_t c) {
  return c < 0x20 || c == 0x7F || (c >= 0x80 && c < 0xA0) || (c >= 0x202A && c <= 0x202E) ||
         (c >= 0x2066 && c <= 0x2069) || c == 0x200E || c == 0x200F || c == 0x061C;
}

int char_width(char32_t c) {
  if ((c >= 0x0300 && c <= 0x036F) || (c >= 0x200B && c <= 0x200D) || (c >= 0xFE00 && c <= 0xFE0F)) return 0;
  const bool wide = (c >= 0x1100 && c <= 0x115F) || (c >= 0x2E80 && c <= 0x303E) || (c >= 0x3041 && c <= 0x33FF) ||
                    (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xA000 && c <= 0xA4CF) ||
                    (c >= 0xAC00 && c <= 0xD7A3) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0xFE30 && c <= 0xFE4F) ||
                    (c >= 0xFF00 && c <= 0xFF60) || (c >= 0xFFE0 && c <= 0xFFE6) || (c >= 0x1F300 && c <= 0x1F64F) ||
                    (c >= 0x1F680 && c <= 0x1F6FF) || (c >= 0x1F900 && c <= 0x1F9FF) || (c >= 0x20000 && c <= 0x3FFFD);
  return wide ? 2 : 1;
}

// Skips the escape sequence starting at text[i] (an ESC) and returns the index after it.
size_t skip_escape(std::string_view text, size_t i) {
  ++i;
  // A lone ESC (at the end, or before a control or a non-ASCII character) is dropped by itself.
  if (i >= text.size() || static_cast<unsigned char>(text[i]) < 0x20 || static_cast<unsigned char>(text[i]) > 0x7E)
    return i;
  const char kind = text[i++];
  if (kind == '[') {  // CSI: parameter and intermediate bytes, then one final byte
    while (i < text.size() && static_cast<unsigned char>(text[i]) >= 0x20 && static_cast<unsigned char>(text[i]) < 0x40)
      ++i;
    while (i < text.size() && static_cast<unsigned char>(text[i]) >= 0x20 && static_cast<unsigned char>(text[i]) < 0x30)
      ++i;
    if (i < text.size() && static_cast<unsigned char>(text[i]) >= 0x40 && static_cast<unsigned char>(text[i]) < 0x7F)
      ++i;
    return i;
  }
  if (kind == ']' || kind == 'P' || kind == '_' || kind == '^' || kind == 'X') {  // strings: to BEL or ESC '\'
    while (i < text.size()) {
      if (text[i] == '\a') return i + 1;
      if (text[i] == '\x1b') return i + 1 < text.size() && text[i + 1] == '\\' ? i + 2 : i + 1;
      ++i;
    }
    return i;
  }
  // Two-byte sequences, with their intermediate bytes (ESC ( B, ESC 7, ESC c ...).
  while (static_cast<unsigned char>(kind) >= 0x20 && static_cast<unsigned char>(kind) < 0x30 && i < text.size() &&
         static_cast<unsigned char>(text[i]) >= 0x20 && static_cast<unsigned char>(text[i]) < 0x30)
    ++i;
  if (static_cast<unsigned char>(kind) >= 0x20 && static_cast<unsigned char>(kind) < 0x30 && i < text.size()) ++i;
  return i;
}

}  // namespace

std::string terminal_safe(std::string_view raw, bool keep_newlines) {
  const std::string text = valid_utf8(raw);
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text[i] == '\x1b') {
      i = skip_escape(text, i);
      continue;
    }
    const size_t start = i;
    const char32_t c = next_char(text, i);
    if (c == '\t')
      out += ' ';
    else if (c == '\n' && keep_newlines)
      out += '\n';
    else if (!is_control(c))
      out.append(text, start, i - start);
  }
  return out;
}

size_t display_width(std::string_view text) {
  size_t width = 0;
  for (size_t i = 0; i < text.size();) width += static_cast<size_t>(char_width(next_char(text, i)));
  return width;
}

std::string fit_columns(std::string_view text, size_t columns) {
  if (display_width(text) <= columns) return std::string(text);
  if (columns == 0) return "";
  // Room for the ellipsis (one column) at the end.
  size_t used = 0, end = 0;
  for (size_t i = 0; i < text.size();) {
    const size_t start = i;
    const auto w = static_cast<size_t>(char_width(next_char(text, i)));
    if (used + w > columns - 1) {
      end = start;
      break;
    }
    used += w;
    end = i;
  }
  return std::string(text.substr(0, end)) + "\u2026";
}

std::string pad_columns(std::string_view text, size_t columns) {
  std::string out = fit_columns(text, columns);
  const size_t width = display_width(out);
  if (width < columns) out.append(columns - width, ' ');
  return out;
}

}  // namespace flowrun
