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
  std::lock_guard lock(mutex_);
  children_.push_back(child);
}

void CancelToken::remove_child(CancelToken* child) {
  std::lock_guard lock(mutex_);
  children_.erase(std::remove(children_.begin(), children_.end(), child), children_.end());
}

void CancelToken::cancel(std::string reason) {
  std::vector<CancelToken*> children;
  {
    std::lock_guard lock(mutex_);
    if (cancelled_.load()) return;
    reason_ = std::move(reason);
    cancelled_.store(true, std::memory_order_release);
    children = children_;
  }
  cv_.notify_all();
  for (auto* child : children) child->cancel(reason_);
}

std::string CancelToken::reason() const {
  std::lock_guard lock(mutex_);
  return reason_;
}

bool CancelToken::wait_for(Duration d) const {
  std::unique_lock lock(mutex_);
  return cv_.wait_for(lock, d, [this] { return cancelled_.load(); });
}

}  // namespace flowrun
