#include "engine/io/curl_multi.h"

#include <condition_variable>
#include <deque>
#include <functional>
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
  TransferLoop() : multi_(curl_multi_init()) {
    // Idle connections kept for the next poll: enough for every monitor of a busy host to find
    // one (a poll holds one for about a millisecond), bounded so that ten thousand monitors of
    // ten thousand hosts do not keep ten thousand sockets and their buffers.
    if (multi_) curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, 256L);
    // At most this many transfers to one host at once; the rest wait in libcurl's queue, where
    // they hold no connection and no receive buffer (their time-outs run meanwhile).
    if (multi_) curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, 64L);
    NoSignalsForNewThreads quiet;  // SIGINT and SIGTERM stay for the process's SignalWatcher
    std::thread([this] { run(); }).detach();
  }

  bool ready() const { return multi_ != nullptr; }

  void add(Transfer& transfer) {
    {
      MutexLock lock(mutex_);
      incoming_.push_back(&transfer);
    }
    curl_multi_wakeup(multi_);
  }

 private:
  // Lives until the process ends: it serves every transfer of every thread.
  void run() {
    t_on_loop = true;
    for (;;) {
      std::vector<Transfer*> added;
      {
        MutexLock lock(mutex_);
        added.swap(incoming_);
      }
      for (Transfer* t : added) {
        curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
        if (CURLMcode rc = curl_multi_add_handle(multi_, t->easy); rc != CURLM_OK) {
          t->result = CURLE_FAILED_INIT;
          t->done();
        }
      }
      int running = 0;
      curl_multi_perform(multi_, &running);
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
      // Returns when a socket is ready, libcurl's next timeout is due, or add() woke it.
      curl_multi_poll(multi_, nullptr, 0, 1000, nullptr);
    }
  }

  CURLM* multi_;
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
    {
      MutexLock lock(mutex_);
      if (waiting_.empty()) {
        ++free_;
        return;
      }
      next = std::move(waiting_.front());  // the slot passes straight to the next in line
      waiting_.pop_front();
    }
    next();
  }

 private:
  Mutex mutex_;
  int free_ GUARDED_BY(mutex_) = TransferSlot::kTransferSlots;
  std::deque<std::function<void()>> waiting_ GUARDED_BY(mutex_);
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

CURLcode perform_transfer(CURL* easy) {
  // A transfer started from one of the loop's own callbacks cannot wait for the loop.
  if (t_on_loop) return curl_easy_perform(easy);
  if (!loop().ready()) {  // no multi handle: each transfer blocks a thread, as before
    CURLcode result = CURLE_OK;
    run_blocking([&] { result = curl_easy_perform(easy); });
    return result;
  }
  Transfer transfer{easy};
  await_completion([&](std::function<void()> done) {
    transfer.done = std::move(done);
    loop().add(transfer);
  });
  return transfer.result;
}

}  // namespace flowrun
