#pragma once
// Finds a fixed string in a large text the way ripgrep's memchr crate does: memchr (SIMD in
// glibc) runs on the needle's rarest byte, by a fixed ranking of how often bytes occur in logs,
// and each hit is checked with a second rare byte and memcmp. On log text the rarest byte of a
// marker (an uppercase letter, '_', a digit that logs seldom hold) seldom occurs, so the search
// runs at memchr's speed; glibc's memmem ran at two thirds of it. A text full of that byte would
// make every hit a candidate, so once checking costs more than the text searched the rest goes
// to memmem, which stays linear.
#include <cstddef>
#include <string>
#include <string_view>

namespace flowrun {

class LiteralFinder {
 public:
  explicit LiteralFinder(std::string needle);

  // The offset of the first occurrence of the needle in `text`, or npos; an empty needle is at 0.
  size_t find(std::string_view text) const;
  bool occurs_in(std::string_view text) const { return find(text) != std::string_view::npos; }
  const std::string& needle() const { return needle_; }

  // How common `byte` is in log text: 0 for the rarest bytes (controls, non-ASCII), higher for
  // more common ones (a space the highest).
  static int frequency_rank(unsigned char byte);

 private:
  std::string needle_;
  size_t rare1_ = 0;  // offsets in the needle of its rarest byte and of its next rarest one
  size_t rare2_ = 0;
};

}  // namespace flowrun
