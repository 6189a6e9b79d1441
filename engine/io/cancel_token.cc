#include "engine/io/cancel_token.h"

#include <algorithm>

#include "engine/io/fiber_scheduler.h"

namespace flowrun {

CancelToken::CancelToken(CancelToken& parent) : parent_(&parent) {
  parent.add_child(this);
  if (parent.cancelled()) cancel(parent.reason());
}

CancelToken::~CancelToken() {
  if (parent_) parent_->remove_child(this);
}

void CancelToken::add_child(CancelToken* child) {
  MutexLock lock(mutex_);
  children_.push_back(child);
}

void CancelToken::remove_child(CancelToken* child) {
  MutexLock lock(mutex_);
  children_.erase(std::remove(children_.begin(), children_.end(), child), children_.end());
}

void CancelToken::cancel(std::string reason) {
  MutexLock lock(mutex_);
  if (cancelled_.load()) return;
  reason_ = reason;
  cancelled_.store(true, std::memory_order_release);
  // Under the lock: a waiter or a child is removed (and may go) only after taking it. The
  // order is always parent, then child, then a fiber scheduler's.
  for (auto* waiter : waiters_) waiter->wake();
  if (cv_) cv_->notify_all();
  for (auto* child : children_) child->cancel(reason);
}

std::string CancelToken::reason() const {
  MutexLock lock(mutex_);
  return reason_;
}

bool CancelToken::wait_for(Duration d) const {
  MutexLock lock(mutex_);
  if (!cv_) cv_ = std::make_unique<std::condition_variable>();
  return lock.wait_for(*cv_, d, [this] { return cancelled_.load(); });
}

bool CancelToken::add_waiter(FiberWaiter& waiter) const {
  MutexLock lock(mutex_);
  if (cancelled_.load()) return false;
  waiters_.push_back(&waiter);
  return true;
}

void CancelToken::remove_waiter(FiberWaiter& waiter) const {
  MutexLock lock(mutex_);
  waiters_.erase(std::remove(waiters_.begin(), waiters_.end(), &waiter), waiters_.end());
}

}  // namespace flowrun
