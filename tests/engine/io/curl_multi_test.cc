// The transfer loop (engine/io/curl_multi.cc) against a host that accepts connections and never
// answers: a cancel and libcurl's own time-out both end the transfer long before the request's
// time-out, with the socket idle all along.
#include "engine/io/curl_multi.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "engine/io/clock.h"
#include "engine/io/fiber_scheduler.h"
#include "engine/io/http_client.h"
#include "engine/io/step_error.h"

using namespace flowrun;
using namespace std::chrono_literals;

namespace {

// A listening socket nobody accepts from: the kernel completes the handshake, takes the request
// into its queue, and nothing ever answers.
class SilentHost {
 public:
  SilentHost() : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd_, 64) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    url_ = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/log";
  }
  ~SilentHost() { ::close(fd_); }
  const std::string& url() const { return url_; }

 private:
  int fd_;
  std::string url_;
};

// How the request ended, and how long it took.
std::pair<ErrorKind, std::chrono::steady_clock::duration> send_expecting_error(const HttpRequest& request,
                                                                               const CancelToken& cancel) {
  CurlHttpClient client;
  const auto start = std::chrono::steady_clock::now();
  try {
    client.send(request, cancel);
  } catch (const StepError& e) {
    return {e.kind(), std::chrono::steady_clock::now() - start};
  }
  FAIL("the request to a silent host returned");
  return {};
}

}  // namespace

TEST_CASE("http transfers: a cancel and a time-out end a request to a host that never answers", "[http][curl]") {
  SilentHost host;
  HttpRequest request;
  request.url = host.url();
  request.timeout = 60s;

  SECTION("a cancel from another thread, the socket idle") {
    CancelToken cancel;
    std::thread canceller([&] {
      std::this_thread::sleep_for(300ms);
      cancel.cancel("stop");
    });
    auto [kind, took] = send_expecting_error(request, cancel);
    canceller.join();
    CHECK(kind == ErrorKind::kCancelled);
    // Not the request's 60 s, nor the 10 s of libcurl's next timer: the loop visits idle
    // transfers every second.
    CHECK(took < 5s);
  }

  SECTION("the request's own time-out, from libcurl's timer") {
    request.timeout = 500ms;
    CancelToken cancel;
    auto [kind, took] = send_expecting_error(request, cancel);
    CHECK(kind == ErrorKind::kTimeout);
    CHECK(took < 5s);
  }
}

TEST_CASE("http transfers: a poll waits for room while a full queue of transfers waits for slots", "[http][curl]") {
  SilentHost host;
  HttpRequest request;
  request.url = host.url();
  request.timeout = 60s;
  CancelToken cancel;
  std::atomic<bool> cancelled{false};
  std::atomic<int> ended{0};
  std::atomic<int> rooms_after_cancel{0};
  constexpr size_t kTransfers = 2 * TransferSlot::kTransferSlots;  // every slot taken, as many queued
  RealClock clock;
  std::thread canceller([&] {
    std::this_thread::sleep_for(500ms);
    cancelled = true;
    cancel.cancel("stop");
  });
  // More polls wait than transfers will end, and none of them makes one (a file's poll, say):
  // the last transfer's end lets the rest go.
  constexpr size_t kPolls = kTransfers + 100;
  run_concurrently(
      kTransfers + kPolls,
      [&](size_t i) {
        if (i < kTransfers) {  // fibers start in order: these hold or queue for a slot first
          CurlHttpClient client;
          try {
            client.send(request, cancel);
          } catch (const StepError&) {
            ++ended;
          }
        } else {
          wait_for_transfer_room();  // 256 queued: parks until the queue shrinks, or empties
          if (cancelled) ++rooms_after_cancel;
        }
      },
      clock);
  canceller.join();
  CHECK(ended == static_cast<int>(kTransfers));
  CHECK(rooms_after_cancel == static_cast<int>(kPolls));
  // Nothing queued: room at once.
  run_concurrently(
      1, [](size_t) { wait_for_transfer_room(); }, clock);
}

TEST_CASE("http transfers: polls let through for room find it, however fast transfers end", "[http][curl]") {
  // Every slot held and a full queue, each by its own silent request. 300 polls wait for room,
  // then each queues a request of its own. When the holders are cancelled, 256 slots free up
  // at once: each release lets polls go by the room it sees, before those let go earlier have
  // queued. A poll must still return only with room in the queue.
  SilentHost host;
  HttpRequest request;
  request.url = host.url();
  request.timeout = 60s;
  CancelToken holders, rest;
  constexpr size_t kSlots = TransferSlot::kTransferSlots;
  constexpr size_t kPolls = 300;
  std::atomic<size_t> queued_at_return{0};
  std::atomic<int> returned{0};
  RealClock clock;
  std::thread canceller([&] {
    std::this_thread::sleep_for(300ms);
    holders.cancel("stop");
    std::this_thread::sleep_for(2500ms);  // past the transfer loop's next sweep, which ends the holders
    rest.cancel("stop");
  });
  auto send = [&](const CancelToken& cancel) {
    CurlHttpClient client;
    try {
      client.send(request, cancel);
    } catch (const StepError&) {
    }
  };
  run_concurrently(
      2 * kSlots + kPolls,
      [&](size_t i) {
        if (i < kSlots) return send(holders);   // fibers start in order: these take the slots
        if (i < 2 * kSlots) return send(rest);  // and these fill the queue
        wait_for_transfer_room();
        const size_t queued = transfers_waiting_for_slot();
        for (size_t seen = queued_at_return.load();
             queued > seen && !queued_at_return.compare_exchange_weak(seen, queued);) {
        }
        ++returned;
        send(rest);
      },
      clock);
  canceller.join();
  CHECK(returned == static_cast<int>(kPolls));
  CHECK(queued_at_return.load() < kSlots);  // 299 when a poll let through did not look again
  CHECK(transfers_waiting_for_slot() == 0);
}
