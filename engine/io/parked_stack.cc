#include "engine/io/parked_stack.h"

#include <sys/mman.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

namespace flowrun {

namespace {

// -1 while FLOWRUN_GUARD_SAVED_STACKS is not read yet.
std::atomic<int> g_guard{-1};

uint64_t load_word(const char* at) {
  uint64_t word;
  std::memcpy(&word, at, sizeof word);
  return word;
}

int significant_bytes(uint64_t x) { return (64 - __builtin_clzll(x) + 7) / 8; }  // x != 0

}  // namespace

bool guard_saved_stacks() {
  int guard = g_guard.load(std::memory_order_relaxed);
  if (guard < 0) {
    const char* env = std::getenv("FLOWRUN_GUARD_SAVED_STACKS");
    guard = env && std::strcmp(env, "1") == 0 ? 1 : 0;
    g_guard.store(guard, std::memory_order_relaxed);
  }
  return guard == 1;
}

void set_guard_saved_stacks(bool on) { g_guard.store(on ? 1 : 0, std::memory_order_relaxed); }

uint64_t StackCodec::to_reference(uint64_t word, uintptr_t top, const Reference& reference) const {
  // Swaps the fiber's stack and the reference's, two ranges of the same size: its own inverse
  // when they are one or do not overlap. They may overlap: the reference's fiber may have ended
  // and a new stack be mapped across its old place. Then no word is moved.
  const uintptr_t apart = top > reference.top ? top - reference.top : reference.top - top;
  if (apart != 0 && apart < stack_size_) return word;
  if (word >= top - stack_size_ && word < top) return word - top + reference.top;
  if (word >= reference.top - stack_size_ && word < reference.top) return word - reference.top + top;
  return word;
}

uint8_t StackCodec::reference_for(const char* from, const char* top) {
  const size_t words = static_cast<size_t>(top - from) / 8;
  size_t nearest = 0;
  for (size_t r = 0; r < references_.size(); ++r) {
    const size_t have = references_[r].words.size();
    if (have == words) return static_cast<uint8_t>(r);
    const auto distance = [words](size_t n) { return n > words ? n - words : words - n; };
    if (distance(have) < distance(references_[nearest].words.size())) nearest = r;
  }
  if (references_.size() == kReferences) return static_cast<uint8_t>(nearest);
  Reference& added = references_.emplace_back();
  added.words.resize(words);
  for (size_t i = 0; i < words; ++i) added.words[i] = load_word(top - 8 * (i + 1));
  added.top = reinterpret_cast<uintptr_t>(top);
  return static_cast<uint8_t>(references_.size() - 1);
}

StackCodec::Encoded StackCodec::encode(const char* from, const char* top) {
  const size_t words = static_cast<size_t>(top - from) / 8;
  const auto top_address = reinterpret_cast<uintptr_t>(top);
  const uint8_t index = reference_for(from, top);
  const Reference& reference = references_[index];
  std::vector<uint8_t>& out = scratch_;
  out.assign((words + 7) / 8, 0);  // the bitmap, then each differing word
  for (size_t i = 0; i < words; ++i) {
    const uint64_t base = i < reference.words.size() ? reference.words[i] : 0;
    const uint64_t x = to_reference(load_word(top - 8 * (i + 1)), top_address, reference) ^ base;
    if (x == 0) continue;
    out[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
    const int n = significant_bytes(x);
    out.push_back(static_cast<uint8_t>(n));
    for (int b = 0; b < n; ++b) out.push_back(static_cast<uint8_t>(x >> (8 * b)));
  }
  // No spare room: it waits as long as the fiber does.
  return Encoded{std::vector<uint8_t>(out.begin(), out.end()), index};
}

bool StackCodec::decode(const Encoded& encoded, char* from, char* top) const {
  if (encoded.reference >= references_.size()) return false;
  const Reference& reference = references_[encoded.reference];
  const std::vector<uint8_t>& bytes = encoded.bytes;
  const size_t words = static_cast<size_t>(top - from) / 8;
  const auto top_address = reinterpret_cast<uintptr_t>(top);
  size_t at = (words + 7) / 8;
  if (bytes.size() < at) return false;
  for (size_t i = 0; i < words; ++i) {
    uint64_t x = 0;
    if (bytes[i / 8] & (1u << (i % 8))) {
      if (at >= bytes.size()) return false;
      const size_t n = bytes[at++];
      if (n == 0 || n > 8 || bytes.size() - at < n) return false;
      for (size_t b = 0; b < n; ++b) x |= uint64_t{bytes[at++]} << (8 * b);
    }
    const uint64_t base = i < reference.words.size() ? reference.words[i] : 0;
    const uint64_t word = to_reference(x ^ base, top_address, reference);
    std::memcpy(top - 8 * (i + 1), &word, sizeof word);
  }
  return at == bytes.size();
}

bool ParkedStack::save(StackCodec& codec, char* low, char* sp, char* top) {
  char* const from = reinterpret_cast<char*>(reinterpret_cast<uintptr_t>(sp) & ~uintptr_t{7});
  try {
    encoded_ = codec.encode(from, top);
  } catch (const std::bad_alloc&) {
    encoded_ = {};
    return false;
  }
  // The whole usable stack: the pages a poll's deeper calls touched as well as the frames'. When
  // guarded it becomes PROT_NONE like the guard page below it: one mapping with it, not one more.
  const size_t size = static_cast<size_t>(top - low);
  guarded_ = guard_saved_stacks();
  if (guarded_ && mprotect(low, size, PROT_NONE) != 0) {
    encoded_ = {};
    return false;  // nothing changed
  }
  // Should the pages not go, they only stay resident: the restore writes the same bytes.
  madvise(low, size, MADV_DONTNEED);
  low_ = low;
  sp_ = from;
  top_ = top;
  return true;
}

void ParkedStack::restore(const StackCodec& codec) {
  if (!low_) return;
  if ((guarded_ && mprotect(low_, static_cast<size_t>(top_ - low_), PROT_READ | PROT_WRITE) != 0) ||
      !codec.decode(encoded_, sp_, top_)) {
    std::fputs("flowrun: a sleeping fiber's stack could not be restored\n", stderr);
    std::abort();
  }
  encoded_ = {};
  low_ = nullptr;
}

}  // namespace flowrun
