#pragma once
#include <atomic>
#include <condition_variable>
#include <memory>
#include <string>
#include <vector>

#include "engine/io/duration.h"
#include "engine/io/mutex.h"

namespace flowrun {

class FiberWaiter;

// A cancellation flag every wait in the engine honours. Cancelling a token cancels every token
// created with it as parent (a for_each iteration, an attempt), never the other way round.
// Thread-safe; a child must not outlive its parent.
class CancelToken {
 public:
  CancelToken() = default;
  explicit CancelToken(CancelToken& parent);
  ~CancelToken();
  CancelToken(const CancelToken&) = delete;
  CancelToken& operator=(const CancelToken&) = delete;

  void cancel(std::string reason = "cancelled");
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }
  std::string reason() const;

  // Blocks the thread for up to `d` of real time. Returns true as soon as the token is cancelled.
  // Fibers wait through their Clock instead (Clock::sleep_for).
  bool wait_for(Duration d) const;

  // A parked fiber to wake when the token is cancelled; false (and not added) when it already
  // is. The waiter must be removed before it goes.
  bool add_waiter(FiberWaiter& waiter) const;
  void remove_waiter(FiberWaiter& waiter) const;

 private:
  void add_child(CancelToken* child);
  void remove_child(CancelToken* child);

  CancelToken* parent_ = nullptr;
  std::atomic<bool> cancelled_{false};
  mutable Mutex mutex_;
  // Made by the first wait_for: only a thread waits on it, and 10,000 waiting items each hold
  // two tokens that fibers wait on through waiters_.
  mutable std::unique_ptr<std::condition_variable> cv_ GUARDED_BY(mutex_);
  std::string reason_ GUARDED_BY(mutex_);
  std::vector<CancelToken*> children_ GUARDED_BY(mutex_);
  mutable std::vector<FiberWaiter*> waiters_ GUARDED_BY(mutex_);
};

}  // namespace flowrun
