#pragma once
// Waiting that costs no thread. A for_each item that polls a log every ten seconds spends all but
// a millisecond of each interval waiting; as a thread it held a stack, a malloc cache and a
// kernel task for that. Here each item is a fiber (Boost.Context): its own small stack on one
// shared thread. A wait (Clock::sleep_for, a cancel, another thread's work) parks the fiber and
// the thread runs the next ready one. A sleep of a second or more keeps the fiber's frames
// encoded on the heap and gives its whole stack back to the kernel (engine/io/parked_stack.h),
// so a monitor waiting for its next poll holds no page of stack. Other waits say what their
// stack does meanwhile (WhileParked).
//
// Blocking calls (libcurl's perform, a child process's pipes) must not run on the shared thread:
// run_blocking() hands them to a pool of helper threads and parks the fiber until they are done.
// Code not on a fiber (the main thread, the pool, the journal's threads) calls the same functions
// and simply blocks as before, so steps are written once.
//
// Time comes from the Clock the scheduler is given: with a VirtualClock, time jumps to the next
// deadline once every fiber waits and no blocking work is out, so a test runs thousands of
// pollers for hours of virtual time in milliseconds.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>

#include "engine/io/clock.h"
#include "engine/io/mutex.h"

namespace flowrun {

class BlockingPool;
class CancelToken;
class FiberScheduler;
class StackCodec;
struct Fiber;

// One fiber's reason to wake, owned by the waiting fiber: on its frame, or on the heap when its
// stack may be saved meanwhile (sleep_until, await). wake() may come from any thread.
class FiberWaiter {
 public:
  FiberWaiter();  // on a fiber only
  FiberWaiter(const FiberWaiter&) = delete;
  FiberWaiter& operator=(const FiberWaiter&) = delete;
  void wake();

 private:
  friend class FiberScheduler;
  FiberScheduler* scheduler_;
  Fiber* fiber_;
  bool woken_ = false;  // guarded by the scheduler's mutex
};

class FiberScheduler {
 public:
  // Each fiber's stack: address space only; what a fiber does not touch costs nothing.
  static constexpr size_t kStackSize = size_t{512} << 10;

  explicit FiberScheduler(Clock& clock);
  ~FiberScheduler();
  FiberScheduler(const FiberScheduler&) = delete;
  FiberScheduler& operator=(const FiberScheduler&) = delete;

  // The scheduler of the fiber running on this thread, or null when this code is not on a fiber.
  static FiberScheduler* current();

  // Adds a fiber that runs `body`; from the scheduler's own thread (a fiber or the code about to
  // call run()). `body` must not throw: what escapes it ends the process. Throws when no stack
  // can be mapped (vm.max_map_count, memory); the stack holds no page until the fiber first runs.
  void spawn(std::function<void()> body);
  // Runs fibers on this thread until all have ended. Not from a fiber.
  void run();

  // How a parked fiber's stack waits: as it is, or its frames saved and the whole stack given
  // back (a long wait during which no other fiber or thread reaches into its frames:
  // engine/io/parked_stack.h; under AddressSanitizer only the pages below the frames go).
  enum class WhileParked { kKeepStack, kSaveFrames };

  // Parks the current fiber until `waiter` is woken (true) or `deadline` passes on the
  // scheduler's clock (false).
  bool park(FiberWaiter& waiter, std::optional<TimePoint> deadline, WhileParked stack = WhileParked::kKeepStack);
  // Parks the current fiber until `deadline` or until `cancel` fires; false when cancelled. A
  // sleep of a second or more saves the fiber's frames and gives back its stack: until it ends,
  // no other fiber or thread may reach anything on this fiber's stack, cancel tokens included
  // (a cancel walks from a token to every token created under it).
  bool sleep_until(TimePoint deadline, const CancelToken& cancel);
  // Runs `work` on a pool thread while the current fiber is parked; rethrows what it threw.
  void run_blocking(const std::function<void()>& work);
  // Calls `start` with a `done` that another thread calls once, and parks the current fiber until
  // it has. Virtual time stands still meanwhile. A `start` that throws must not have handed
  // `done` to anyone.
  using Start = std::function<void(std::function<void()> done)>;
  // `stack`: for a wait that may be long (see WhileParked); `done` holds nothing of the stack's.
  void await(const Start& start, WhileParked stack = WhileParked::kKeepStack);

  Clock& clock() const { return clock_; }
  // Pool threads alive now (busy or idle), for tests and benchmarks.
  size_t blocking_threads() const;

  // A fiber that gives back the stack pages below its frames keeps this margin below them (for
  // the release itself and the switch).
  static constexpr size_t kReleaseMargin = 256;
  // Over the process since the last reset: the deepest frames a sleeping fiber saved (from its
  // stack's top to the switch), and the most bytes they took saved. For tests and benchmarks.
  static size_t deepest_save();
  static size_t largest_saved();
  static void reset_save_figures();

 private:
  friend class FiberWaiter;
  void make_ready_locked(Fiber* fiber) REQUIRES(mutex_);
  void wake_locked(FiberWaiter& waiter) REQUIRES(mutex_);
  void resume(Fiber* fiber);
  void fire_due_timers();
  // Waits until a fiber is ready: for a cross-thread wake, the next deadline in real time, or a
  // virtual clock's jump to it.
  void idle();
  static void release_unused_stack(const Fiber& fiber, const char* lowest_in_use);
  void save_stack(Fiber& fiber);

  Clock& clock_;
  mutable Mutex mutex_;
  std::condition_variable wake_;                 // a fiber became ready
  std::deque<Fiber*> ready_ GUARDED_BY(mutex_);  // to resume, in order
  size_t outside_ GUARDED_BY(mutex_) = 0;        // run_blocking() calls under way
  std::multimap<TimePoint, Fiber*> timers_;      // parked fibers' deadlines; the scheduler's thread only
  size_t live_ = 0;                              // fibers spawned and not ended
  std::unique_ptr<BlockingPool> pool_;
  std::unique_ptr<StackCodec> stack_codec_;  // the scheduler's thread only
};

// Runs body(0) ... body(n - 1) concurrently and returns when all have returned: as fibers of the
// current scheduler when called from a fiber (the caller parks), else on a scheduler of its own
// running on this thread with `clock`.
void run_concurrently(size_t n, const std::function<void(size_t)>& body, Clock& clock);

// `work` on a pool thread when called from a fiber (which parks meanwhile); else simply `work()`.
void run_blocking(const std::function<void()>& work);

// FiberScheduler::await on a fiber; elsewhere the thread waits for `done`.
void await_completion(const FiberScheduler::Start& start,
                      FiberScheduler::WhileParked stack = FiberScheduler::WhileParked::kKeepStack);

}  // namespace flowrun
