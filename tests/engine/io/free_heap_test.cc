#include "engine/io/free_heap.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "support/process_memory.h"

using namespace flowrun;
using flowrun::test::process_resident_bytes;

// glibc's allocator only: a sanitizer's keeps freed memory in quarantine.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FLOWRUN_HAS_ASAN 1
#endif
#endif
#if !defined(__SANITIZE_ADDRESS__) && !defined(FLOWRUN_HAS_ASAN)
TEST_CASE("freed memory between allocations still in use goes back to the kernel", "[io]") {
  // As a for_each's items leave it: blocks freed among small ones that stay, so the heap's top
  // does not move and malloc keeps every freed page resident by itself.
  constexpr size_t kBlocks = 4000, kBlock = 8192;
  std::vector<void*> freed(kBlocks), kept(kBlocks);
  for (size_t i = 0; i < kBlocks; ++i) {
    freed[i] = std::malloc(kBlock);
    REQUIRE(freed[i]);
    std::memset(freed[i], 1, kBlock);
    kept[i] = std::malloc(16);
  }
  for (void* p : freed) std::free(p);
  const size_t before = process_resident_bytes();
  give_back_free_heap();
  const size_t after = process_resident_bytes();
  CHECK(before > after);
  CHECK(before - after > kBlocks * kBlock / 2);  // most of the 31 MiB
  for (void* p : kept) std::free(p);
}
#endif
