#include "engine/io/cancel_token.h"

#include <algorithm>

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
  std::vector<CancelToken*> children;
  {
    MutexLock lock(mutex_);
    if (cancelled_.load()) return;
    reason_ = reason;
    cancelled_.store(true, std::memory_order_release);
    children = children_;
  }
  cv_.notify_all();
  for (auto* child : children) child->cancel(reason);
}

std::string CancelToken::reason() const {
  MutexLock lock(mutex_);
  return reason_;
}

bool CancelToken::wait_for(Duration d) const {
  MutexLock lock(mutex_);
  return lock.wait_for(cv_, d, [this] { return cancelled_.load(); });
}

}  // namespace flowrun
