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
  const StackCodec::Encoded reference = codec.encode(first.top() - 8 * depth, first.top());
  const StackCodec::Encoded encoded = codec.encode(second.top() - 8 * depth, second.top());
  CHECK(reference.bytes.size() == depth / 8);       // the reference against itself: its bitmap only
  CHECK(encoded.reference == reference.reference);  // the same depth, the same reference
  // Own-stack pointers moved to the reference's: only the heap pointers and the two odd words differ.
  CHECK(encoded.bytes.size() < depth / 8 + depth / 5 * 4 + 40);
  std::memset(first.top() - 8 * depth, 0, 8 * depth);
  std::memset(second.top() - 8 * depth, 0, 8 * depth);
  REQUIRE(codec.decode(encoded, second.top() - 8 * depth, second.top()));
  REQUIRE(codec.decode(reference, first.top() - 8 * depth, first.top()));
  CHECK(second.words == second_words);
  CHECK(first.words == first_words);

  SECTION("other depths: a reference each, then the nearest") {
    FakeStack other;
    for (size_t d = 1; d < StackCodec::kReferences; ++d) codec.encode(other.top() - 8 * d, other.top());
    // Every reference taken: frames of a new depth use the nearest (the 400-word one).
    for (size_t i = 0; i < 2 * depth; ++i) other.put(i, 0x1234 * i);
    const std::vector<uint64_t> other_words = other.words;
    const auto deeper = codec.encode(other.top() - 16 * depth, other.top());
    CHECK(deeper.reference == reference.reference);
    std::memset(other.top() - 16 * depth, 0, 16 * depth);
    REQUIRE(codec.decode(deeper, other.top() - 16 * depth, other.top()));
    CHECK(other.words == other_words);
  }
  SECTION("a stack mapped across the reference's old place") {
    // The reference's fiber ended and a new stack overlaps where it was: its own-stack pointers
    // must come back as they were, not moved twice.
    std::vector<uint64_t> region(kSize / 8 + kSize / 16);
    char* const base = reinterpret_cast<char*>(region.data());
    StackCodec fresh(kSize);
    char* const old_top = base + kSize;
    char* const new_top = base + kSize + kSize / 2;
    fresh.encode(old_top - 8 * depth, old_top);  // the reference, at the old place
    for (size_t i = 0; i < depth; ++i) {
      const uint64_t value = i % 2 ? reinterpret_cast<uintptr_t>(new_top) - 8 * (i + 2) : 0x55d0a3c4e2a0 + i;
      std::memcpy(new_top - 8 * (i + 1), &value, 8);
    }
    const std::vector<uint64_t> before = region;
    const auto encoded_here = fresh.encode(new_top - 8 * depth, new_top);
    std::memset(new_top - 8 * depth, 0, 8 * depth);
    REQUIRE(fresh.decode(encoded_here, new_top - 8 * depth, new_top));
    CHECK(region == before);
  }
  SECTION("bytes that do not fit are refused") {
    StackCodec::Encoded cut = encoded;
    cut.bytes.pop_back();
    CHECK_FALSE(codec.decode(cut, second.top() - 8 * depth, second.top()));
    StackCodec::Encoded longer = encoded;
    longer.bytes.push_back(0);
    CHECK_FALSE(codec.decode(longer, second.top() - 8 * depth, second.top()));
    CHECK_FALSE(codec.decode({}, second.top() - 8 * depth, second.top()));
    StackCodec::Encoded unknown = encoded;
    unknown.reference = StackCodec::kReferences;
    CHECK_FALSE(codec.decode(unknown, second.top() - 8 * depth, second.top()));
  }
}
