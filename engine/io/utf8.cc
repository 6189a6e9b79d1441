#include "engine/io/utf8.h"

#include <cstdio>
#include <memory>
#include <vector>

namespace flowrun {
namespace {

// How many bytes starting at `i` form one valid code point, or 0 when they do not; `bad` gets
// the length of the maximal invalid subpart to replace (at least 1).
size_t code_point_length(std::string_view s, size_t i, size_t& bad) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  bad = 1;
  if (c < 0x80) return 1;
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF)
    need = 1;
  else if (c == 0xE0)
    need = 2, lo = 0xA0;
  else if (c >= 0xE1 && c <= 0xEC)
    need = 2;
  else if (c == 0xED)
    need = 2, hi = 0x9F;  // no surrogates
  else if (c >= 0xEE && c <= 0xEF)
    need = 2;
  else if (c == 0xF0)
    need = 3, lo = 0x90;
  else if (c >= 0xF1 && c <= 0xF3)
    need = 3;
  else if (c == 0xF4)
    need = 3, hi = 0x8F;  // nothing above U+10FFFF
  else
    return 0;
  for (size_t k = 1; k <= need; ++k) {
    if (i + k >= s.size()) return 0;
    const unsigned char x = b(i + k);
    const bool ok = k == 1 ? (x >= lo && x <= hi) : (x >= 0x80 && x <= 0xBF);
    if (!ok) return 0;
    bad = k + 1;
  }
  return need + 1;
}

}  // namespace

size_t valid_utf8_prefix(std::string_view text) {
  size_t i = 0, bad = 0;
  while (i < text.size()) {
    // Runs of ASCII, the common case, are skipped a byte at a time without the decoder.
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t n = code_point_length(text, i, bad);
    if (n == 0) return i;
    i += n;
  }
  return text.size();
}

std::string valid_utf8(std::string_view text) {
  size_t i = valid_utf8_prefix(text);
  if (i == text.size()) return std::string(text);
  std::string out(text.substr(0, i));
  out.reserve(text.size() + 8);
  size_t bad = 0;
  while (i < text.size()) {
    const size_t n = code_point_length(text, i, bad);
    if (n) {
      out.append(text.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD
      i += bad;
    }
  }
  return out;
}

void make_valid_utf8(Json& value) {
  // An explicit stack: a value nested thousands deep must not overflow the C++ stack here.
  std::vector<Json*> todo{&value};
  while (!todo.empty()) {
    Json* v = todo.back();
    todo.pop_back();
    if (v->is_string()) {
      auto& s = v->get_ref<std::string&>();
      if (valid_utf8_prefix(s) != s.size()) s = valid_utf8(s);
    } else if (v->is_array()) {
      for (auto& item : *v) todo.push_back(&item);
    } else if (v->is_object()) {
      std::vector<std::string> bad_keys;
      for (auto it = v->begin(); it != v->end(); ++it)
        if (valid_utf8_prefix(it.key()) != it.key().size()) bad_keys.push_back(it.key());
      for (const auto& k : bad_keys) {
        Json moved = std::move((*v)[k]);
        v->erase(k);
        (*v)[valid_utf8(k)] = std::move(moved);  // two bad keys may now coincide: the last wins
      }
      for (auto& [k, item] : v->items()) todo.push_back(&item);
    }
  }
}

std::optional<TextPosition> first_invalid_utf8(std::string_view text) {
  const size_t bad = valid_utf8_prefix(text);
  if (bad == text.size()) return std::nullopt;
  TextPosition pos;
  for (size_t i = 0; i < bad; ++i) {
    if (text[i] == '\n') {
      ++pos.line;
      pos.col = 1;
    } else {
      ++pos.col;
    }
  }
  return pos;
}

std::string dump_json(const Json& value, int indent) {
  return value.dump(indent, ' ', false, Json::error_handler_t::replace);
}

namespace {

// Where nlohmann's serializer writes, counting instead of keeping.
class CountedOutput final : public nlohmann::detail::output_adapter_protocol<char> {
 public:
  void write_character(char) override { ++size; }
  void write_characters(const char*, std::size_t length) override { size += length; }
  size_t size = 0;
};

void serialize(const Json& value, nlohmann::detail::output_adapter_t<char> out) {
  nlohmann::detail::serializer<Json>(std::move(out), ' ', Json::error_handler_t::replace).dump(value, false, false, 0);
}

}  // namespace

std::string dump_json_sized(const Json& value) {
  auto counted = std::make_shared<CountedOutput>();
  serialize(value, counted);
  std::string text;
  text.reserve(counted->size);
  serialize(value, nlohmann::detail::output_adapter<char>(text));
  return text;
}

}  // namespace flowrun
