#include "engine/io/curl_multi.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <thread>
#include <vector>

#include "engine/io/fiber_scheduler.h"
#include "engine/io/mutex.h"
#include "engine/io/signal_mask.h"

namespace flowrun {
namespace {

struct Transfer {
  CURL* easy;
  CURLcode result = CURLE_OK;
  std::function<void()> done;  // the waiting caller's
};

thread_local bool t_on_loop = false;  // this thread is the loop's

class TransferLoop {
 public:
  TransferLoop()
      : multi_(curl_multi_init()), epoll_(epoll_create1(EPOLL_CLOEXEC)), wake_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    epoll_event wake{};
    wake.events = EPOLLIN;
    wake.data.fd = wake_;
    if (!multi_ || epoll_ < 0 || wake_ < 0 || epoll_ctl(epoll_, EPOLL_CTL_ADD, wake_, &wake) != 0) {
      if (multi_) curl_multi_cleanup(multi_);
      if (epoll_ >= 0) close(epoll_);
      if (wake_ >= 0) close(wake_);
      multi_ = nullptr;  // not ready(): each transfer blocks a thread of its own instead
      return;
    }
    // Idle connections kept for the next poll: enough for every monitor of a busy host to find
    // one (a poll holds one for about a millisecond), bounded so that ten thousand monitors of
    // ten thousand hosts do not keep ten thousand sockets and their buffers.
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, 256L);
    // At most this many transfers to one host at once; the rest wait in libcurl's queue, where
    // they hold no connection and no receive buffer (their time-outs run meanwhile).
    curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, 64L);
    // libcurl's socket interface: it says which sockets to watch and when its next timeout is
    // due, and is told which socket is ready, so an event costs the one transfer it concerns.
    // curl_multi_perform visited every transfer on every event, and poll() every socket (12% of
    // flowrun's CPU at 4,000 monitors went to the kernel's poll).
    curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
    NoSignalsForNewThreads quiet;  // SIGINT and SIGTERM stay for the process's SignalWatcher
    std::thread([this] { run(); }).detach();
  }

  bool ready() const { return multi_ != nullptr; }

  void add(Transfer& transfer) {
    bool first = false;
    {
      MutexLock lock(mutex_);
      first = incoming_.empty();
      incoming_.push_back(&transfer);
    }
    if (!first) return;  // the loop has not taken the others yet: it takes this one with them
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(wake_, &one, sizeof one);  // fails only when the count is full: awake anyway
  }

 private:
  using Clock = std::chrono::steady_clock;
  // Every transfer's progress callback runs at least this often, even when its socket is idle:
  // that is how a cancelled transfer to a hung host ends (http_client.cc, on_progress).
  static constexpr auto kSweep = std::chrono::seconds(1);

  // Lives until the process ends: it serves every transfer of every thread.
  void run() {
    t_on_loop = true;
    Clock::time_point next_sweep = Clock::now() + kSweep;
    epoll_event events[64];
    for (;;) {
      take_incoming();
      const Clock::time_point wake_at = timer_ ? std::min(*timer_, next_sweep) : next_sweep;
      const auto wait = std::chrono::ceil<std::chrono::milliseconds>(wake_at - Clock::now()).count();
      const int ready = epoll_wait(epoll_, events, 64, static_cast<int>(std::max<int64_t>(wait, 0)));
      int running = 0;
      for (int i = 0; i < ready; ++i) {
        const int fd = events[i].data.fd;
        if (fd == wake_) {
          uint64_t count = 0;
          [[maybe_unused]] ssize_t n = read(wake_, &count, sizeof count);
          continue;
        }
        const uint32_t e = events[i].events;
        const int mask = (e & EPOLLIN ? CURL_CSELECT_IN : 0) | (e & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                         (e & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
        curl_multi_socket_action(multi_, fd, mask, &running);
      }
      const Clock::time_point now = Clock::now();
      if (timer_ && *timer_ <= now) {
        timer_.reset();
        curl_multi_socket_action(multi_, CURL_SOCKET_TIMEOUT, 0, &running);
      }
      if (now >= next_sweep) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
        // Deprecated for event loops, which need not visit every transfer; this one does, once a
        // second, for cancellations (kSweep). socket_action has no call that visits them all.
        curl_multi_socket_all(multi_, &running);
#pragma GCC diagnostic pop
        next_sweep = now + kSweep;
      }
      finish_done();
    }
  }

  void take_incoming() {
    std::vector<Transfer*> added;
    {
      MutexLock lock(mutex_);
      added.swap(incoming_);
    }
    for (Transfer* t : added) {
      curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
      if (CURLMcode rc = curl_multi_add_handle(multi_, t->easy); rc != CURLM_OK) {  // sets a timer of 0: starts next
        t->result = CURLE_FAILED_INIT;
        t->done();
      }
    }
  }

  void finish_done() {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      Transfer* t = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&t));
      const CURLcode result = msg->data.result;
      curl_multi_remove_handle(multi_, msg->easy_handle);
      t->result = result;
      t->done();  // after it, the transfer and its handle may be gone
    }
  }

  // CURLMOPT_SOCKETFUNCTION: watch `s` for what libcurl asks, or no more. `known` is what
  // curl_multi_assign gave the socket: non-null once it is in the epoll set.
  static int on_socket(CURL*, curl_socket_t s, int what, void* self_ptr, void* known) {
    auto* self = static_cast<TransferLoop*>(self_ptr);
    if (what == CURL_POLL_REMOVE) {
      epoll_ctl(self->epoll_, EPOLL_CTL_DEL, s, nullptr);  // fails harmlessly if already closed
      return 0;
    }
    epoll_event ev{};
    ev.events = (what & CURL_POLL_IN ? uint32_t{EPOLLIN} : 0) | (what & CURL_POLL_OUT ? uint32_t{EPOLLOUT} : 0);
    ev.data.fd = s;
    // A socket closed without a REMOVE left the set by itself; its number may come back.
    if (epoll_ctl(self->epoll_, known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s, &ev) != 0)
      epoll_ctl(self->epoll_, known ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, s, &ev);
    if (!known) curl_multi_assign(self->multi_, s, self);
    return 0;
  }

  // CURLMOPT_TIMERFUNCTION: libcurl's next timeout, in `ms` (-1: none). The loop calls it.
  static int on_timer(CURLM*, long ms, void* self_ptr) {
    auto* self = static_cast<TransferLoop*>(self_ptr);
    if (ms < 0)
      self->timer_.reset();
    else
      self->timer_ = Clock::now() + std::chrono::milliseconds(ms);
    return 0;
  }

  CURLM* multi_;
  const int epoll_;
  const int wake_;                          // an eventfd: add() wakes the loop through it
  std::optional<Clock::time_point> timer_;  // the loop's thread's only
  Mutex mutex_;
  std::vector<Transfer*> incoming_ GUARDED_BY(mutex_);
};

TransferLoop& loop() {
  static TransferLoop* loop = new TransferLoop;  // never destroyed: its thread runs to the end
  return *loop;
}

// The free transfer slots, and who waits for one (first come, first served).
class Slots {
 public:
  void acquire() {
    if (take_free()) return;  // most transfers: no parking, no callback made
    await_completion([this](std::function<void()> done) {
      {
        MutexLock lock(mutex_);
        if (free_ == 0) {
          waiting_.push_back(std::move(done));
          return;
        }
        --free_;
      }
      done();
    });
  }
  void release() {
    std::function<void()> next;
    std::vector<std::function<void()>> admitted;
    {
      MutexLock lock(mutex_);
      if (waiting_.empty()) {
        ++free_;
      } else {
        next = std::move(waiting_.front());  // the slot passes straight to the next in line
        waiting_.pop_front();
      }
      admitted = let_go_locked();
    }
    if (next) next();
    for (const auto& go : admitted) go();
  }
  size_t queued() {
    MutexLock lock(mutex_);
    return waiting_.size();
  }
  // wait_for_transfer_room()
  void wait_for_room() {
    {
      MutexLock lock(mutex_);
      if (may_go_locked()) return;  // every poll but in a burst: no parking
    }
    await_completion(
        [this](std::function<void()> done) {
          {
            MutexLock lock(mutex_);
            if (!may_go_locked()) {
              room_waiting_.push_back(std::move(done));
              return;
            }
            ++let_go_;
          }
          done();
        },
        // Nothing reaches its frames meanwhile: they wait saved (10,000 starting monitors would
        // hold a page of stack each until their first transfer).
        FiberScheduler::WhileParked::kSaveFrames);
    // Let go, into room kept for this poll: the transfer it makes next takes it. Should it make
    // none while nothing is under way, no release would come for those still waiting: let
    // them go here.
    std::vector<std::function<void()>> admitted;
    {
      MutexLock lock(mutex_);
      --let_go_;
      if (free_ == TransferSlot::kTransferSlots) admitted = let_go_locked();
    }
    for (const auto& go : admitted) go();
  }

 private:
  // Room in the queue counts the polls let go that have not queued their transfers yet: without
  // them each release of a burst let one more poll through than the last, and 8,000 of 10,000
  // starting polls waited for a slot deep in a request, on a second stack page.
  bool has_room_locked() REQUIRES(mutex_) { return waiting_.size() + let_go_ < kRoom; }
  // Whether a poll arriving now goes on: there is room, and nobody waits for it before this one.
  bool may_go_locked() REQUIRES(mutex_) { return room_waiting_.empty() && has_room_locked(); }

  // The polls waiting for room that may go, as many as the queue has room for; first come,
  // first let go.
  std::vector<std::function<void()>> let_go_locked() REQUIRES(mutex_) {
    const size_t taken = waiting_.size() + let_go_;
    size_t room = taken < kRoom ? kRoom - taken : 0;
    std::vector<std::function<void()>> out;
    for (; room > 0 && !room_waiting_.empty(); --room) {
      out.push_back(std::move(room_waiting_.front()));
      room_waiting_.pop_front();
      ++let_go_;
    }
    return out;
  }

  bool take_free() {
    MutexLock lock(mutex_);
    if (free_ == 0) return false;
    --free_;
    return true;
  }

  static constexpr size_t kRoom = TransferSlot::kTransferSlots;  // transfers queued before a poll waits
  Mutex mutex_;
  int free_ GUARDED_BY(mutex_) = TransferSlot::kTransferSlots;
  std::deque<std::function<void()>> waiting_ GUARDED_BY(mutex_);
  std::deque<std::function<void()>> room_waiting_ GUARDED_BY(mutex_);  // polls waiting for the queue to shrink
  size_t let_go_ GUARDED_BY(mutex_) = 0;  // polls let go from room_waiting_ and not yet back from the wait
};

Slots& slots() {
  static Slots* slots = new Slots;  // never destroyed, like the loop it feeds
  return *slots;
}

}  // namespace

TransferSlot::TransferSlot() {
  if (!t_on_loop) slots().acquire();
}

TransferSlot::~TransferSlot() {
  if (!t_on_loop) slots().release();
}

void wait_for_transfer_room() {
  if (!t_on_loop) slots().wait_for_room();
}

size_t transfers_waiting_for_slot() { return slots().queued(); }

CURLcode perform_transfer(CURL* easy) {
  // A transfer started from one of the loop's own callbacks cannot wait for the loop.
  if (t_on_loop) return curl_easy_perform(easy);
  if (!loop().ready()) {  // no multi handle: each transfer blocks a thread, as before
    CURLcode result = CURLE_OK;
    run_blocking([&] { result = curl_easy_perform(easy); });
    return result;
  }
  Transfer transfer{easy, CURLE_OK, {}};
  await_completion([&](std::function<void()> done) {
    transfer.done = std::move(done);
    loop().add(transfer);
  });
  return transfer.result;
}

}  // namespace flowrun
