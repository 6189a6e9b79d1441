#include "engine/load/expression_names.h"

namespace flowrun {
namespace {

bool is_word(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; }
bool is_word_start(char c) { return is_word(c) && !(c >= '0' && c <= '9'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
// \s of ECMAScript std::regex in the "C" locale.
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

size_t word_end(std::string_view s, size_t i) {
  while (i < s.size() && is_word(s[i])) ++i;
  return i;
}

size_t digits_end(std::string_view s, size_t i) {
  while (i < s.size() && is_digit(s[i])) ++i;
  return i;
}

// Whether a match may begin its name at `i` after a match that ended at `last_end`: at the
// text's start, or after a character outside `excluded` that no earlier match consumed.
bool may_start(std::string_view s, size_t i, size_t last_end, std::string_view excluded) {
  if (i == 0) return true;
  if (i - 1 < last_end) return false;
  const char before = s[i - 1];
  return !is_word(before) && excluded.find(before) == std::string_view::npos;
}

}  // namespace

std::vector<std::string> dotted_names(std::string_view code, std::string_view prefix) {
  std::vector<std::string> out;
  size_t last_end = 0;
  for (size_t i = code.find(prefix); i != std::string_view::npos; i = code.find(prefix, i + 1)) {
    const size_t dot = i + prefix.size();
    if (dot + 1 >= code.size() || code[dot] != '.' || !is_word_start(code[dot + 1])) continue;
    if (!may_start(code, i, last_end, ".")) continue;
    const size_t end = word_end(code, dot + 1);
    out.emplace_back(code.substr(dot + 1, end - dot - 1));
    last_end = end;
    i = end - 1;
  }
  return out;
}

std::vector<std::string> called_names(std::string_view code) {
  std::vector<std::string> out;
  size_t last_end = 0;
  for (size_t i = 0; i < code.size();) {
    if (!is_word_start(code[i]) || (i > 0 && is_word(code[i - 1]))) {
      ++i;
      continue;
    }
    const size_t end = word_end(code, i);
    size_t j = end;
    while (j < code.size() && is_space(code[j])) ++j;
    if (j < code.size() && code[j] == '(' && may_start(code, i, last_end, ".:")) {
      out.emplace_back(code.substr(i, end - i));
      last_end = j + 1;
      i = j + 1;
      continue;
    }
    i = end;
  }
  return out;
}

bool is_identifier(std::string_view s) { return !s.empty() && is_word_start(s[0]) && word_end(s, 0) == s.size(); }

bool is_integer_text(std::string_view s) {
  size_t i = !s.empty() && (s[0] == '-' || s[0] == '+') ? 1 : 0;
  return i < s.size() && digits_end(s, i) == s.size();
}

bool is_float_text(std::string_view s) {
  size_t i = !s.empty() && (s[0] == '-' || s[0] == '+') ? 1 : 0;
  const size_t whole = digits_end(s, i);
  size_t j = whole;
  if (j < s.size() && s[j] == '.') {
    const size_t fraction = digits_end(s, j + 1);
    if (whole == i && fraction == j + 1) return false;  // "." alone, or a sign and "."
    j = fraction;
  } else if (whole == i) {
    return false;
  }
  if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
    size_t k = j + 1;
    if (k < s.size() && (s[k] == '-' || s[k] == '+')) ++k;
    const size_t exponent = digits_end(s, k);
    if (exponent == k) return false;
    j = exponent;
  }
  return j == s.size();
}

}  // namespace flowrun
