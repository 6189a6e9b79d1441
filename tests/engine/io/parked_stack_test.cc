#include "engine/io/parked_stack.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <vector>

using namespace flowrun;

namespace {

// Two stand-ins for fiber stacks: disjoint mappings of the same size, frames at their tops.
constexpr size_t kSize = 64 << 10;

struct FakeStack {
  std::vector<uint64_t> words = std::vector<uint64_t>(kSize / 8);
  char* top() { return reinterpret_cast<char*>(words.data() + words.size()); }
  uint64_t address(size_t offset_from_top) { return reinterpret_cast<uintptr_t>(top()) - offset_from_top; }
  void put(size_t index_from_top, uint64_t value) { words[words.size() - 1 - index_from_top] = value; }
};

}  // namespace

TEST_CASE("stack codec: frames come back word for word, and alike frames cost little", "[fiber]") {
  FakeStack first, second;
  StackCodec codec(kSize);
  const size_t depth = 400;  // words in use
  for (size_t i = 0; i < depth; ++i) {
    // Zeros, return addresses, pointers into the stack itself, heap pointers, data.
    const uint64_t pattern[] = {0, 0x55d0a3c4e2a0 + i, first.address(8 * (i + 3)), 0x7f12345678 + 16 * i, i * i};
    first.put(i, pattern[i % 5]);
    const uint64_t same_calls[] = {0, 0x55d0a3c4e2a0 + i, second.address(8 * (i + 3)), 0x7f12349999 + 16 * i, i * i};
    second.put(i, same_calls[i % 5]);
  }
  second.put(7, first.address(64));  // a pointer into the reference's stack: kept as it is
  second.put(9, ~uint64_t{0});
  const std::vector<uint64_t> first_words = first.words, second_words = second.words;
  const std::vector<uint8_t> reference = codec.encode(first.top() - 8 * depth, first.top());
  const std::vector<uint8_t> encoded = codec.encode(second.top() - 8 * depth, second.top());
  CHECK(reference.size() == depth / 8);  // the reference against itself: its bitmap only
  // Own-stack pointers moved to the reference's: only the heap pointers and the two odd words differ.
  CHECK(encoded.size() < depth / 8 + depth / 5 * 4 + 40);
  std::memset(first.top() - 8 * depth, 0, 8 * depth);
  std::memset(second.top() - 8 * depth, 0, 8 * depth);
  REQUIRE(codec.decode(encoded, second.top() - 8 * depth, second.top()));
  REQUIRE(codec.decode(reference, first.top() - 8 * depth, first.top()));
  CHECK(second.words == second_words);
  CHECK(first.words == first_words);

  SECTION("frames deeper than the reference's") {
    FakeStack deep;
    for (size_t i = 0; i < 2 * depth; ++i) deep.put(i, 0x1234 * i);
    const std::vector<uint64_t> deep_words = deep.words;
    const auto bytes = codec.encode(deep.top() - 16 * depth, deep.top());
    std::memset(deep.top() - 16 * depth, 0, 16 * depth);
    REQUIRE(codec.decode(bytes, deep.top() - 16 * depth, deep.top()));
    CHECK(deep.words == deep_words);
  }
  SECTION("bytes that do not fit are refused") {
    std::vector<uint8_t> cut = encoded;
    cut.pop_back();
    CHECK_FALSE(codec.decode(cut, second.top() - 8 * depth, second.top()));
    std::vector<uint8_t> longer = encoded;
    longer.push_back(0);
    CHECK_FALSE(codec.decode(longer, second.top() - 8 * depth, second.top()));
    CHECK_FALSE(codec.decode({}, second.top() - 8 * depth, second.top()));
  }
}
