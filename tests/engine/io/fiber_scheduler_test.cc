#include "engine/io/fiber_scheduler.h"

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "engine/io/cancel_token.h"
#include "engine/io/parked_stack.h"
#include "support/process_memory.h"
#include "support/process_threads.h"

using namespace flowrun;
using namespace std::chrono_literals;

using flowrun::test::process_resident_bytes;
using flowrun::test::process_threads;

TEST_CASE("fibers sleep side by side in virtual time and share one thread", "[fiber]") {
  VirtualClock clock;
  const TimePoint start = clock.now();
  CancelToken cancel;
  const int before = process_threads();
  int most_threads = 0;
  std::vector<TimePoint> woke(1000);
  run_concurrently(
      1000,
      [&](size_t i) {
        for (int k = 0; k < 6; ++k) REQUIRE(clock.sleep_for(10s + Duration(i), cancel));
        woke[i] = clock.now();
        most_threads = std::max(most_threads, process_threads());
      },
      clock);
  // Six sleeps of about 10 s each, all at once: a minute of virtual time, not a thousand.
  CHECK(clock.now() - start == 60s + Duration(6 * 999));
  for (size_t i = 0; i < woke.size(); ++i) CHECK(woke[i] - start == 60s + Duration(6 * i));
  CHECK(most_threads == before);
}

TEST_CASE("a cancel from another thread wakes a sleeping fiber at once", "[fiber]") {
  RealClock clock;
  CancelToken cancel;
  std::vector<bool> slept(3, true);
  std::thread canceller([&] {
    std::this_thread::sleep_for(50ms);
    cancel.cancel("stop");
  });
  const auto started = std::chrono::steady_clock::now();
  run_concurrently(
      3, [&](size_t i) { slept[i] = clock.sleep_for(std::chrono::hours(1), cancel); }, clock);
  canceller.join();
  CHECK(std::chrono::steady_clock::now() - started < 30s);
  CHECK(slept == std::vector<bool>{false, false, false});
  // A fiber asked to sleep on a token already cancelled does not park.
  run_concurrently(
      1, [&](size_t) { CHECK_FALSE(clock.sleep_for(1h, cancel)); }, clock);
}

TEST_CASE("blocking work runs off the fibers' thread while the others go on", "[fiber]") {
  VirtualClock clock;
  const TimePoint start = clock.now();
  CancelToken cancel;
  const auto fibers_thread = std::this_thread::get_id();
  std::thread::id worked_on;
  std::atomic<bool> released{false};
  std::vector<std::string> order;
  Duration passed_during_call{-1};
  run_concurrently(
      2,
      [&](size_t i) {
        if (i == 0) {
          // Blocks its thread until the other fiber, on the fibers' thread, has run.
          run_blocking([&] {
            worked_on = std::this_thread::get_id();
            while (!released) std::this_thread::sleep_for(1ms);
            std::this_thread::sleep_for(20ms);
          });
          order.push_back("blocking call returned");
          passed_during_call = clock.now() - start;
        } else {
          order.push_back("sibling ran");
          released = true;
          // Virtual time stands still while a blocking call is out: what it brings back may
          // be due before this sleep ends.
          REQUIRE(clock.sleep_for(5s, cancel));
          order.push_back("sibling slept");
        }
      },
      clock);
  CHECK(worked_on != fibers_thread);
  CHECK(order == std::vector<std::string>{"sibling ran", "blocking call returned", "sibling slept"});
  CHECK(passed_during_call == 0s);
  // Off fibers it is a plain call on this thread.
  run_blocking([&] { worked_on = std::this_thread::get_id(); });
  CHECK(worked_on == fibers_thread);
}

TEST_CASE("what blocking work throws reaches the fiber that waited for it", "[fiber]") {
  VirtualClock clock;
  std::string caught;
  run_concurrently(
      1,
      [&](size_t) {
        try {
          run_blocking([] { throw std::runtime_error("connection refused"); });
        } catch (const std::runtime_error& e) {
          caught = e.what();
        }
      },
      clock);
  CHECK(caught == "connection refused");
}

TEST_CASE("a fiber parked inside a catch block keeps its own exception", "[fiber]") {
  VirtualClock clock;
  CancelToken cancel;
  std::vector<std::string> rethrown(2);
  run_concurrently(
      2,
      [&](size_t i) {
        try {
          try {
            throw std::runtime_error("error of fiber " + std::to_string(i));
          } catch (...) {
            // The other fiber throws and catches its own meanwhile.
            REQUIRE(clock.sleep_for(Duration(10 - 5 * static_cast<int>(i)), cancel));
            throw;
          }
        } catch (const std::runtime_error& e) {
          rethrown[i] = e.what();
        }
      },
      clock);
  CHECK(rethrown == std::vector<std::string>{"error of fiber 0", "error of fiber 1"});
  CHECK(std::uncaught_exceptions() == 0);
}

TEST_CASE("run_concurrently from a fiber joins the same scheduler", "[fiber]") {
  VirtualClock clock;
  CancelToken cancel;
  const TimePoint start = clock.now();
  std::vector<int> done(4, 0);
  run_concurrently(
      2,
      [&](size_t outer) {
        run_concurrently(
            2,
            [&](size_t inner) {
              REQUIRE(clock.sleep_for(30s, cancel));
              ++done[outer * 2 + inner];
            },
            clock);
      },
      clock);
  CHECK(done == std::vector<int>{1, 1, 1, 1});
  CHECK(clock.now() - start == 30s);  // all four slept at once
}

TEST_CASE("what a fiber's body throws is rethrown once all have ended", "[fiber]") {
  VirtualClock clock;
  CancelToken cancel;
  int finished = 0;
  auto body = [&](size_t i) {
    if (i == 1) throw std::runtime_error("item 1 broke");
    REQUIRE(clock.sleep_for(1s, cancel));
    ++finished;
  };
  CHECK_THROWS_WITH(run_concurrently(3, body, clock), "item 1 broke");
  CHECK(finished == 2);
}

TEST_CASE("cancels racing timers never resume a fiber twice", "[fiber]") {
  // A timer readies a fiber while another thread's cancel wakes it: it must be queued once (a
  // second entry would resume it after it ended).
  RealClock clock;
  for (int round = 0; round < 30; ++round) {
    CancelToken cancel;
    std::thread canceller([&] {
      std::this_thread::sleep_for(std::chrono::microseconds(500 * (round % 7)));
      cancel.cancel("stop");
    });
    std::atomic<int> ended{0};
    run_concurrently(
        64,
        [&](size_t) {
          while (clock.sleep_for(Duration(1), cancel)) {
          }
          ++ended;
        },
        clock);
    canceller.join();
    CHECK(ended == 64);
  }
}

namespace {

// Whether the page holding `p` is in memory now.
bool resident(const volatile char* p) {
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  unsigned char in_core = 0;
  REQUIRE(mincore(reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(p) & ~(page - 1)), page, &in_core) == 0);
  return in_core & 1;
}

}  // namespace

#if !defined(__SANITIZE_ADDRESS__)  // under ASan frames are not saved (fiber_scheduler.cc)
TEST_CASE("a spawned fiber holds no stack page until it first runs", "[fiber]") {
  // 10,000 items of a for_each are spawned at once: each used to hold a page (boost writes its
  // record at the top of the stack) before its turn came.
  constexpr int kFibers = 4000;
  VirtualClock clock;
  FiberScheduler scheduler(clock);
  int ran = 0;
  const size_t before = process_resident_bytes();
  for (int i = 0; i < kFibers; ++i) scheduler.spawn([&] { ++ran; });
  const size_t grown = process_resident_bytes() - before;
  // Their Fiber records, on the heap, are ~200 bytes each; a page each would be 16 MiB.
  CHECK(grown < kFibers * size_t{1024});
  scheduler.run();
  CHECK(ran == kFibers);
}

TEST_CASE("a fiber sleeping a second or more holds no stack page and wakes with its frames whole", "[fiber]") {
  FiberScheduler::reset_save_figures();
  VirtualClock clock;
  CancelToken cancel;
  const volatile char* frame = nullptr;  // the sleeper's array, seen from the other fiber
  bool in_short_sleep = false, in_long_sleep = true, whole = false;
  run_concurrently(
      2,
      [&](size_t i) {
        if (i == 0) {
          char local[3000];
          for (size_t k = 0; k < sizeof local; ++k) local[k] = static_cast<char>(k * 7 + 1);
          frame = local;
          REQUIRE(clock.sleep_for(500ms, cancel));  // too short to save: the stack stays
          REQUIRE(clock.sleep_for(10s, cancel));    // saved, the stack given back
          whole = true;
          for (size_t k = 0; k < sizeof local; ++k) whole = whole && local[k] == static_cast<char>(k * 7 + 1);
        } else {
          REQUIRE(clock.sleep_for(100ms, cancel));
          in_short_sleep = resident(frame);
          REQUIRE(clock.sleep_for(5s, cancel));
          in_long_sleep = resident(frame);
        }
      },
      clock);
  CHECK(in_short_sleep);
  CHECK_FALSE(in_long_sleep);
  CHECK(whole);
  CHECK(FiberScheduler::deepest_save() >= 3000);
  CHECK(FiberScheduler::largest_saved() > 0);
}

TEST_CASE("touching a sleeping fiber's stack from elsewhere is a crash at the access", "[fiber]") {
  // Not a quiet read of zeros: what another fiber or thread reaches on a saved stack must live
  // on the heap, and a mistake must show where it is.
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    std::signal(SIGSEGV, SIG_DFL);  // not the test framework's report
    set_guard_saved_stacks(true);   // as the suite runs (FLOWRUN_GUARD_SAVED_STACKS=1)
    VirtualClock clock;
    CancelToken cancel;
    const volatile char* frame = nullptr;
    run_concurrently(
        2,
        [&](size_t i) {
          if (i == 0) {
            char local[64] = {1};
            frame = local;
            clock.sleep_for(10s, cancel);
          } else {
            clock.sleep_for(1s, cancel);
            if (*frame == 1) _exit(3);  // read the saved stack: must not get here
            _exit(4);
          }
        },
        clock);
    _exit(0);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGSEGV);
}
#endif
