#include "engine/io/mutex.h"

#include <catch2/catch.hpp>
#include <thread>

using namespace flowrun;
using namespace std::chrono_literals;

namespace {

// A flag another thread sets: what the waits below wait for.
struct Flag {
  Mutex mutex;
  std::condition_variable changed;
  bool set GUARDED_BY(mutex) = false;
  int reads GUARDED_BY(mutex) = 0;
};

}  // namespace

TEST_CASE("mutex: a MutexLock waits with the mutex released, and holds it again after", "[io][mutex]") {
  Flag flag;
  std::thread setter([&] {
    std::this_thread::sleep_for(20ms);
    MutexLock lock(flag.mutex);
    flag.set = true;
    flag.changed.notify_all();
  });
  {
    MutexLock lock(flag.mutex);
    lock.wait(flag.changed, [&]() REQUIRES(flag.mutex) { return flag.set; });
    CHECK(flag.set);
    CHECK_FALSE(lock.wait_for(flag.changed, 1ms, [&]() REQUIRES(flag.mutex) { return ++flag.reads > 1000000; }));
    lock.unlock();
    lock.lock();
    CHECK(flag.reads >= 1);
  }
  setter.join();
}
