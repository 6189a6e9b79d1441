#include "engine/io/fiber_scheduler.h"

#include <cxxabi.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <boost/context/fiber.hpp>
#include <boost/context/protected_fixedsize_stack.hpp>
#include <cstdint>
#include <exception>
#include <map>
#include <optional>
#include <type_traits>
#include <utility>

#include "engine/io/blocking_pool.h"
#include "engine/io/cancel_token.h"
#include "engine/io/parked_stack.h"

namespace flowrun {
namespace ctx = boost::context;

namespace {

// The C++ runtime's per-thread record of the exceptions being handled (Itanium ABI:
// caughtExceptions, uncaughtExceptions). A fiber parked inside a catch block must find its own
// record when it resumes, not that of the fiber that ran meanwhile, so each fiber keeps one and
// they are swapped at every switch, as folly's fibers do.
struct ExceptionState {
  void* caught = nullptr;
  unsigned int uncaught = 0;
};

ExceptionState& thread_exception_state() { return *reinterpret_cast<ExceptionState*>(abi::__cxa_get_globals()); }

// A fiber sleeping at least this long saves its frames and gives back its stack; a shorter
// sleep is not worth encoding the frames and the page faults of touching the stack again.
constexpr Duration kSaveStackAfter = std::chrono::seconds(1);

// AddressSanitizer poisons the redzones between locals: reading and writing whole frames would
// be reported. Under it a wait that would save its frames gives back the pages below them.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kCanSaveFrames = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kCanSaveFrames = false;
#else
constexpr bool kCanSaveFrames = true;
#endif
#else
constexpr bool kCanSaveFrames = true;
#endif

}  // namespace

struct Fiber {
  std::function<void()> body;
  ctx::fiber context;          // the fiber, while it does not run
  ctx::fiber scheduler;        // the scheduler, while the fiber runs
  ctx::stack_context stack{};  // mapped by spawn()
  bool started = false;        // its context is made when it first runs (SpawnedStack)
  ExceptionState exceptions;
  FiberWaiter* waiting = nullptr;                                   // what it parked on (scheduler's mutex)
  bool queued = false;                                              // in the ready queue (scheduler's mutex)
  std::optional<std::multimap<TimePoint, Fiber*>::iterator> timer;  // scheduler's thread only
  bool save_when_parked = false;  // once it has switched away; scheduler's thread only
  ParkedStack parked;             // its frames while it sleeps; scheduler's thread only
};

namespace {

thread_local FiberScheduler* t_scheduler = nullptr;  // the scheduler running on this thread
thread_local Fiber* t_fiber = nullptr;               // the fiber running on this thread

// Boost's guarded stack (a PROT_NONE page below it turns an overflow into a crash rather than
// corruption), mapped by spawn() and handed to boost when the fiber first runs: boost writes its
// record at the top of the stack, a resident page, and 10,000 items spawned at once would each
// hold one before their turn came.
class SpawnedStack {
 public:
  explicit SpawnedStack(Fiber* fiber) : fiber_(fiber) {}
  static ctx::stack_context map() { return ctx::protected_fixedsize_stack(FiberScheduler::kStackSize).allocate(); }
  ctx::stack_context allocate() { return fiber_->stack; }
  void deallocate(ctx::stack_context& stack) noexcept {
    ctx::protected_fixedsize_stack(FiberScheduler::kStackSize).deallocate(stack);
  }

 private:
  Fiber* fiber_;
};

const size_t kPage = static_cast<size_t>(sysconf(_SC_PAGESIZE));
std::atomic<size_t> g_deepest_save{0};   // FiberScheduler::deepest_save
std::atomic<size_t> g_largest_saved{0};  // FiberScheduler::largest_saved

void raise_to(std::atomic<size_t>& most, size_t value) {
  for (size_t seen = most.load(); value > seen && !most.compare_exchange_weak(seen, value);) {
  }
}

// Where a fiber that has switched away stopped: boost::context's fcontext keeps it as the fiber
// object's one member, the stack pointer below the registers it saved (the ucontext and
// Windows backends keep something else).
#if defined(BOOST_USE_UCONTEXT) || defined(BOOST_USE_WINFIB)
#error "saved stacks read boost::context's fcontext stack pointer"
#endif
char* switched_stack_pointer(const ctx::fiber& fiber) {
  static_assert(sizeof(ctx::fiber) == sizeof(void*) && std::is_standard_layout_v<ctx::fiber>);
  return *reinterpret_cast<char* const*>(&fiber);
}

}  // namespace

FiberWaiter::FiberWaiter() : scheduler_(FiberScheduler::current()), fiber_(t_fiber) {}

void FiberWaiter::wake() {
  MutexLock lock(scheduler_->mutex_);
  scheduler_->wake_locked(*this);
}

FiberScheduler::FiberScheduler(Clock& clock)
    : clock_(clock),
      pool_(std::make_unique<BlockingPool>()),
      stack_codec_(std::make_unique<StackCodec>(kStackSize + kPage)) {}

FiberScheduler::~FiberScheduler() = default;

FiberScheduler* FiberScheduler::current() { return t_fiber ? t_scheduler : nullptr; }

void FiberScheduler::spawn(std::function<void()> body) {
  auto fiber = std::make_unique<Fiber>();
  fiber->body = std::move(body);
  fiber->stack = SpawnedStack::map();  // throws when no mapping can be had: the caller learns it now
  ++live_;
  MutexLock lock(mutex_);
  make_ready_locked(fiber.release());
}

void FiberScheduler::make_ready_locked(Fiber* fiber) {
  if (fiber->queued) return;
  fiber->queued = true;
  ready_.push_back(fiber);
  wake_.notify_one();
}

void FiberScheduler::wake_locked(FiberWaiter& waiter) {
  if (waiter.woken_) return;
  waiter.woken_ = true;
  if (waiter.fiber_->waiting == &waiter) make_ready_locked(waiter.fiber_);
}

void FiberScheduler::run() {
  FiberScheduler* const outer = t_scheduler;
  t_scheduler = this;
  while (live_ > 0) {
    fire_due_timers();
    Fiber* next = nullptr;
    {
      MutexLock lock(mutex_);
      if (!ready_.empty()) {
        next = ready_.front();
        ready_.pop_front();
        next->queued = false;
        // From here a wake (a cancel racing the timer that readied it) must not queue it again:
        // it is about to run, and may end before that second entry would be popped.
        next->waiting = nullptr;
      }
    }
    if (next)
      resume(next);
    else
      idle();
  }
  t_scheduler = outer;
}

void FiberScheduler::resume(Fiber* fiber) {
  if (!fiber->started) {
    fiber->started = true;
    fiber->context = ctx::fiber(std::allocator_arg, SpawnedStack(fiber), [fiber](ctx::fiber&& scheduler) {
      fiber->scheduler = std::move(scheduler);
      fiber->body();
      fiber->body = nullptr;
      return std::move(fiber->scheduler);
    });
  }
  fiber->parked.restore(*stack_codec_);
  if (fiber->timer) {
    timers_.erase(*fiber->timer);
    fiber->timer.reset();
  }
  ExceptionState& state = thread_exception_state();
  std::swap(state, fiber->exceptions);
  t_fiber = fiber;
  fiber->context = std::move(fiber->context).resume();
  t_fiber = nullptr;
  std::swap(state, fiber->exceptions);
  if (!fiber->context) {  // it returned
    --live_;
    delete fiber;
  } else if (fiber->save_when_parked) {
    fiber->save_when_parked = false;
    save_stack(*fiber);
  }
}

void FiberScheduler::save_stack(Fiber& fiber) {
  // Now that the fiber has switched away, its frames end where its switch saved its registers.
  char* const top = static_cast<char*>(fiber.stack.sp);
  char* const low = top - fiber.stack.size + kPage;  // above the guard page
  char* const sp = switched_stack_pointer(fiber.context);
  if (fiber.parked.save(*stack_codec_, low, sp, top)) {
    raise_to(g_deepest_save, static_cast<size_t>(top - sp));
    raise_to(g_largest_saved, fiber.parked.saved_bytes());
  } else {
    release_unused_stack(fiber, sp);  // no memory for the copy: the frames stay, the rest goes
  }
}

void FiberScheduler::fire_due_timers() {
  if (timers_.empty()) return;
  const TimePoint now = clock_.now();
  MutexLock lock(mutex_);
  while (!timers_.empty() && timers_.begin()->first <= now) {
    Fiber* fiber = timers_.begin()->second;
    timers_.erase(timers_.begin());
    fiber->timer.reset();
    make_ready_locked(fiber);
  }
}

void FiberScheduler::idle() {
  std::optional<TimePoint> next;
  if (!timers_.empty()) next = timers_.begin()->first;
  MutexLock lock(mutex_);
  auto ready = [this]() REQUIRES(mutex_) { return !ready_.empty(); };
  if (ready()) return;
  if (next && clock_.is_virtual()) {
    // Virtual time jumps to the next deadline, but only when no blocking call is out: what it
    // brings back may be due first.
    if (outside_ == 0) {
      clock_.advance_to(*next);
      return;
    }
    lock.wait(wake_, ready);
  } else if (next) {
    lock.wait_until(wake_, std::chrono::steady_clock::now() + (*next - clock_.now()), ready);
  } else {
    lock.wait(wake_, ready);
  }
}

bool FiberScheduler::park(FiberWaiter& waiter, std::optional<TimePoint> deadline, WhileParked stack) {
  Fiber* const fiber = t_fiber;
  {
    MutexLock lock(mutex_);
    if (waiter.woken_) return true;
    fiber->waiting = &waiter;
  }
  if (deadline) fiber->timer = timers_.emplace(*deadline, fiber);
  const bool save = stack == WhileParked::kSaveFrames;
  if (save && !kCanSaveFrames)  // the pages below the frames go instead
    release_unused_stack(*fiber, static_cast<char*>(__builtin_frame_address(0)) - kReleaseMargin);
  fiber->save_when_parked = save && kCanSaveFrames;  // by resume(), once switched away
  fiber->scheduler = std::move(fiber->scheduler).resume();
  MutexLock lock(mutex_);
  fiber->waiting = nullptr;
  return waiter.woken_;
}

bool FiberScheduler::sleep_until(TimePoint deadline, const CancelToken& cancel) {
  // On the heap: a cancel from another thread reaches it while this stack may be saved.
  const auto waiter = std::make_unique<FiberWaiter>();
  if (!cancel.add_waiter(*waiter)) return false;
  const bool long_sleep = deadline - clock_.now() >= kSaveStackAfter;
  park(*waiter, deadline, long_sleep ? WhileParked::kSaveFrames : WhileParked::kKeepStack);
  cancel.remove_waiter(*waiter);
  return !cancel.cancelled();
}

void FiberScheduler::await(const Start& start, WhileParked stack) {
  // On the heap: `done` reaches it while the stack may be saved.
  const auto owned_waiter = std::make_unique<FiberWaiter>();
  FiberWaiter& waiter = *owned_waiter;
  {
    MutexLock lock(mutex_);
    ++outside_;
  }
  auto done = [this, &waiter] {
    // One critical section: a virtual clock must not jump between the end of the work and the
    // fiber being ready. After it, nothing of the fiber's is touched: it may be gone.
    MutexLock lock(mutex_);
    --outside_;
    wake_locked(waiter);
  };
  try {
    start(done);
  } catch (...) {
    // Nothing was started (start's contract): nothing will call done.
    MutexLock lock(mutex_);
    --outside_;
    throw;
  }
  while (!park(waiter, std::nullopt, stack)) {
  }
}

void FiberScheduler::run_blocking(const std::function<void()>& work) {
  std::exception_ptr error;
  await([this, &work, &error](std::function<void()> done) {
    pool_->submit([&work, &error, done = std::move(done)] {
      try {
        work();
      } catch (...) {
        error = std::current_exception();
      }
      done();
    });
  });
  if (error) std::rethrow_exception(error);
}

size_t FiberScheduler::blocking_threads() const { return pool_->threads(); }

size_t FiberScheduler::deepest_save() { return g_deepest_save.load(); }

size_t FiberScheduler::largest_saved() { return g_largest_saved.load(); }

void FiberScheduler::reset_save_figures() {
  g_deepest_save = 0;
  g_largest_saved = 0;
}

void FiberScheduler::release_unused_stack(const Fiber& fiber, const char* lowest_in_use) {
  // The stack grows down from stack.sp; its lowest page is the guard. The pages wholly below
  // what is in use hold nothing live; the switch about to happen may touch one again, which
  // only costs a page fault. The executor keeps the frames a waiting item holds small (see
  // AttemptRunner::attempt): the fewer pages they span, and the less a saved stack holds.
  auto* const top = static_cast<char*>(fiber.stack.sp);
  const uintptr_t low = reinterpret_cast<uintptr_t>(top - fiber.stack.size) + kPage;
  const uintptr_t end = reinterpret_cast<uintptr_t>(lowest_in_use) & ~(uintptr_t{kPage} - 1);
  if (end > low) madvise(reinterpret_cast<void*>(low), end - low, MADV_DONTNEED);
}

void run_concurrently(size_t n, const std::function<void(size_t)>& body, Clock& clock) {
  FiberScheduler* const current = FiberScheduler::current();
  std::optional<FiberScheduler> own;
  FiberScheduler& scheduler = current ? *current : own.emplace(clock);
  std::optional<FiberWaiter> all_ended;  // the calling fiber's, when it is one
  if (current) all_ended.emplace();
  size_t running = n;  // touched by fibers of one thread only
  std::exception_ptr first_error;
  std::exception_ptr spawn_error;  // no stack to be had (vm.max_map_count, memory)
  for (size_t i = 0; i < n; ++i) {
    try {
      scheduler.spawn([&, i] {
        try {
          body(i);
        } catch (...) {
          if (!first_error) first_error = std::current_exception();
        }
        if (--running == 0 && all_ended) all_ended->wake();
      });
    } catch (...) {
      // None has run yet (spawning does not switch): wait only for those spawned, which use
      // this frame, then report why the rest did not start.
      spawn_error = std::current_exception();
      running -= n - i;
      break;
    }
  }
  if (current) {
    while (running > 0) scheduler.park(*all_ended, std::nullopt);
  } else {
    scheduler.run();
  }
  if (spawn_error) std::rethrow_exception(spawn_error);
  if (first_error) std::rethrow_exception(first_error);
}

void run_blocking(const std::function<void()>& work) {
  if (FiberScheduler* scheduler = FiberScheduler::current())
    scheduler->run_blocking(work);
  else
    work();
}

void await_completion(const FiberScheduler::Start& start, FiberScheduler::WhileParked stack) {
  if (FiberScheduler* scheduler = FiberScheduler::current()) return scheduler->await(start, stack);
  Mutex mutex;
  std::condition_variable ended;
  bool done = false;
  start([&] {
    MutexLock lock(mutex);
    done = true;
    ended.notify_one();  // under the lock: the waiter's frame may go as soon as it is released
  });
  MutexLock lock(mutex);
  lock.wait(ended, [&] { return done; });
}

}  // namespace flowrun
