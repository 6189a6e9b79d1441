#include "engine/step_api/poll_workers.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <stdexcept>
#include <thread>
#include <vector>

using flowrun::PollWorkers;
using namespace std::chrono_literals;

TEST_CASE("poll workers: work runs on a worker, its exception reaches the caller, workers are reused", "[poll]") {
  PollWorkers workers;
  std::thread::id ran_on;
  workers.run([&] { ran_on = std::this_thread::get_id(); });
  CHECK(ran_on != std::this_thread::get_id());
  CHECK_THROWS_WITH(workers.run([] { throw std::runtime_error("probe failed"); }), "probe failed");
  for (int i = 0; i < 20; ++i) workers.run([] {});
  CHECK(workers.threads() == 1);  // one caller at a time needs one worker
}

TEST_CASE("poll workers: a hanging poll holds up the others for at most the patience, idle workers end", "[poll]") {
  PollWorkers::Limits limits;
  limits.core = 1;
  limits.patience = 20ms;
  limits.idle_limit = 50ms;
  PollWorkers workers(limits);
  std::atomic<bool> release{false};
  std::thread hung([&] {
    workers.run([&] {
      while (!release) std::this_thread::sleep_for(1ms);
    });
  });
  while (workers.threads() < 1) std::this_thread::sleep_for(1ms);
  // The only core worker is busy: these get workers of their own once they have waited 20 ms.
  std::atomic<int> done{0};
  std::vector<std::thread> callers;
  for (int i = 0; i < 8; ++i) callers.emplace_back([&] { workers.run([&] { ++done; }); });
  for (auto& t : callers) t.join();
  CHECK(done == 8);
  CHECK(workers.threads() >= 2);
  release = true;
  hung.join();
  // Everyone is idle now; after the idle limit the workers end.
  for (int i = 0; i < 400 && workers.threads() > 0; ++i) std::this_thread::sleep_for(5ms);
  CHECK(workers.threads() == 0);
  bool ran = false;
  workers.run([&] { ran = true; });  // and the pool still works, starting a worker again
  CHECK(ran);
}
