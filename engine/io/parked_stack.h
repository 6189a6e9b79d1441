#pragma once
// A fiber's frames kept off its stack while it sleeps. A for_each item that polls every ten
// seconds holds, between two polls, the frames from its fiber's start down to the timer: about
// 3.6 KiB, so one resident page of stack per waiting item, 39 MiB at 10,000 monitors. More than
// half of those bytes are zeros, and the frames of items that wait alike differ in few others.
// So while a fiber sleeps a second or more, its frames wait on the heap compressed (zstd, with
// the first frames saved as dictionary: about 600 bytes), and the whole stack goes back to the
// kernel; before the fiber runs again, the bytes go back where they were, at the same addresses,
// so every pointer into them holds.
//
// Nothing may touch a sleeping fiber's stack meanwhile. A waiter, a cancel token or anything
// else that another fiber or thread can reach while the fiber sleeps lives on the heap
// (FiberScheduler::sleep_until's waiter, the executor's cancel tokens). The saved stack is also
// made inaccessible (PROT_NONE), so a mistake is a crash at the access, not a quiet read of
// zeros or a write that the restore undoes.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace flowrun {

// The scheduler's codec and dictionary; one per FiberScheduler, used from its thread only.
class StackCodec {
 public:
  StackCodec();
  ~StackCodec();
  StackCodec(const StackCodec&) = delete;
  StackCodec& operator=(const StackCodec&) = delete;

  // The compressed form of [from, from + size), or empty when it cannot be had (no memory).
  std::vector<char> compress(const char* from, size_t size);
  // Writes `size` bytes at `to` from what compress() returned; false if they do not come back.
  bool decompress(const std::vector<char>& compressed, char* to, size_t size);

 private:
  struct Contexts;
  std::unique_ptr<Contexts> contexts_;
};

// One fiber's stack while it sleeps: the usable part [low, top) (the guard page below `low`),
// the frames in use [sp, top).
class ParkedStack {
 public:
  // Saves the frames and gives back and protects the stack; false, with the stack left as it
  // was, when the frames could not be saved.
  bool save(StackCodec& codec, char* low, char* sp, char* top);
  // Puts the frames back before the fiber runs; ends the process if they do not come back, as
  // the fiber could not run. Nothing to do when nothing is saved.
  void restore(StackCodec& codec);
  bool saved() const { return !compressed_.empty(); }
  size_t saved_bytes() const { return compressed_.size(); }

 private:
  std::vector<char> compressed_;
  char* low_ = nullptr;
  char* sp_ = nullptr;
  char* top_ = nullptr;
};

}  // namespace flowrun
