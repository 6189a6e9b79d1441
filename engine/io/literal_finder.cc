#include "engine/io/literal_finder.h"

#include <string.h>  // memmem (GNU)

#include <cstring>

namespace flowrun {
namespace {

// Printable bytes from the most common in logs to the least; a byte not listed is rarer than all.
constexpr std::string_view kCommonFirst =
    " \netaoinsrhldcumfpg0w1y2b.:v-k/3,5=46789_\"x'()TSAEICRNODLPMHB[]FUGW>j<q;z|#*+@%&$!?{}VKYJXQZ\\~^`\t\r";

}  // namespace

int LiteralFinder::frequency_rank(unsigned char byte) {
  const size_t at = byte == 0 ? std::string_view::npos : kCommonFirst.find(static_cast<char>(byte));
  return at == std::string_view::npos ? 0 : static_cast<int>(kCommonFirst.size() - at);
}

LiteralFinder::LiteralFinder(std::string needle) : needle_(std::move(needle)) {
  auto rank = [&](size_t i) { return frequency_rank(static_cast<unsigned char>(needle_[i])); };
  for (size_t i = 1; i < needle_.size(); ++i)
    if (rank(i) < rank(rare1_)) rare1_ = i;
  rare2_ = rare1_ == 0 && needle_.size() > 1 ? 1 : 0;
  for (size_t i = 0; i < needle_.size(); ++i)
    if (i != rare1_ && needle_[i] != needle_[rare1_] && rank(i) < rank(rare2_)) rare2_ = i;
}

size_t LiteralFinder::find(std::string_view text) const {
  const size_t m = needle_.size();
  if (m == 0) return 0;
  if (text.size() < m) return std::string_view::npos;
  const char* const base = text.data();
  const char rare1 = needle_[rare1_];
  const char rare2 = needle_[rare2_];
  // A candidate start s holds the rare byte at s + rare1_, and s + m <= size.
  const char* from = base + rare1_;
  const char* const last = base + (text.size() - m) + rare1_;  // the last place the rare byte may be
  size_t checked = 0;                                          // bytes compared by failed candidates
  while (from <= last) {
    const char* hit = static_cast<const char*>(std::memchr(from, rare1, static_cast<size_t>(last - from) + 1));
    if (!hit) return std::string_view::npos;
    const char* start = hit - rare1_;
    if (start[rare2_] == rare2 && std::memcmp(start, needle_.data(), m) == 0) return static_cast<size_t>(start - base);
    from = hit + 1;
    checked += m;
    // Checking outgrew the text passed: the rare byte is common here; memmem is linear.
    if (checked > 4096 + 2 * static_cast<size_t>(from - base)) {
      const char* rest = start + 1;
      const void* at = ::memmem(rest, static_cast<size_t>(base + text.size() - rest), needle_.data(), m);
      return at ? static_cast<size_t>(static_cast<const char*>(at) - base) : std::string_view::npos;
    }
  }
  return std::string_view::npos;
}

}  // namespace flowrun
