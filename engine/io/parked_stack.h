#pragma once
// A fiber's frames kept off its stack while it sleeps. A for_each item that polls every ten
// seconds holds, between two polls, the frames from its fiber's start down to the timer: about
// 3.6 KiB, so one resident page of stack per waiting item, 39 MiB at 10,000 monitors. While a
// fiber sleeps a second or more (or waits for room in the transfer queue, or for the journal's
// shared commit), its frames wait on the heap, encoded against frames saved before (StackCodec:
// items that wait alike differ in few bytes, about 350 for a url monitor), and the whole stack
// goes back to the kernel; before the fiber runs again, the bytes go back where they were, at
// the same addresses, so every pointer into them holds.
//
// Nothing may touch a sleeping fiber's stack meanwhile. A waiter, a cancel token or anything
// else that another fiber or thread can reach while the fiber sleeps lives on the heap
// (FiberScheduler::sleep_until's waiter, the executor's cancel tokens): what reads a saved
// stack reads zeros, and what writes it is undone by the restore. With the guard on
// (FLOWRUN_GUARD_SAVED_STACKS=1, as the test suite runs) a saved stack is also PROT_NONE, so such
// a mistake is a crash at the access; it costs two mprotect calls a sleep, about 5% of the CPU
// of 10,000 url monitors, so it is off by default.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace flowrun {

// Whether saved stacks are PROT_NONE: from FLOWRUN_GUARD_SAVED_STACKS unless set here.
bool guard_saved_stacks();
void set_guard_saved_stacks(bool on);

// Frames as their difference from a reference, word by word from the stack's top down. The
// references are the first frames encoded of each depth (frames of the same calls have the
// same depth), up to kReferences of them; deeper or shallower frames use the nearest. A word
// that points into the fiber's own stack is first moved to the same place in the reference's
// stack (and one pointing there moved here, so that the mapping stays one to one): frames of
// the same calls then differ only in their heap pointers and data. Per word: a bit (it
// differs), and for one that differs, its count of significant bytes and those bytes. One per
// FiberScheduler, used from its thread only.
class StackCodec {
 public:
  static constexpr size_t kReferences = 16;
  struct Encoded {
    std::vector<uint8_t> bytes;
    uint8_t reference = 0;  // which one it was encoded against
  };

  // `stack_size`: the size of every stack's mapping, the span a pointer into one may cover.
  explicit StackCodec(size_t stack_size) : stack_size_(stack_size) {}

  // [from, top) as bytes; `from` and `top` 8-byte aligned.
  Encoded encode(const char* from, const char* top);
  // Writes back what encode() returned for the same `from` and `top`; false if the bytes do
  // not fit them (a bug: the fiber cannot run).
  bool decode(const Encoded& encoded, char* from, char* top) const;

 private:
  struct Reference {
    std::vector<uint64_t> words;  // from the top down
    uintptr_t top = 0;
  };
  uint8_t reference_for(const char* from, const char* top);
  uint64_t to_reference(uint64_t word, uintptr_t top, const Reference& reference) const;

  size_t stack_size_;
  std::vector<Reference> references_;
  std::vector<uint8_t> scratch_;  // encode()'s room, reused
};

// One fiber's stack while it sleeps: the usable part [low, top) (the guard page below `low`),
// the frames in use [sp, top).
class ParkedStack {
 public:
  // Saves the frames and gives back the stack (PROT_NONE when guarded); false, with the stack
  // left as it was, when they could not be saved (no memory).
  bool save(StackCodec& codec, char* low, char* sp, char* top);
  // Puts the frames back before the fiber runs; ends the process if they do not come back, as
  // the fiber could not run. Nothing to do when nothing is saved.
  void restore(const StackCodec& codec);
  size_t saved_bytes() const { return encoded_.bytes.size(); }

 private:
  StackCodec::Encoded encoded_;
  char* low_ = nullptr;  // null while nothing is saved
  char* sp_ = nullptr;
  char* top_ = nullptr;
  bool guarded_ = false;
};

}  // namespace flowrun
