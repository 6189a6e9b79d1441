#include "engine/io/curl_easy_pool.h"

#include <vector>

#include "engine/io/mutex.h"

namespace flowrun {
namespace {

struct IdleHandles {
  Mutex mutex;
  std::vector<CURL*> handles GUARDED_BY(mutex);
};

// Never destroyed: a transfer that ends while the process exits still has somewhere to go.
IdleHandles& idle() {
  static auto* handles = new IdleHandles;
  return *handles;
}

}  // namespace

void GiveBackEasyHandle::operator()(CURL* easy) const {
  curl_easy_reset(easy);
  // libcurl frees a transfer's receive buffer when the transfer is done, except on paths that
  // end it early (a malformed URL; an HTTP/2 connection another stream still uses). A handle
  // that kept its buffer refuses a new CURLOPT_BUFFERSIZE, and the reset has set its size back
  // to the default: the next transfer would read 16 KiB into a 4 KiB buffer. Such a handle is
  // freed, not kept; this setting succeeds exactly when no buffer is left.
  if (curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, static_cast<long>(CURL_MAX_WRITE_SIZE)) != CURLE_OK) {
    curl_easy_cleanup(easy);
    return;
  }
  IdleHandles& pool = idle();
  {
    MutexLock lock(pool.mutex);
    if (pool.handles.size() < kIdleEasyHandlesKept) {
      pool.handles.push_back(easy);
      return;
    }
  }
  curl_easy_cleanup(easy);
}

PooledEasyHandle take_easy_handle() {
  IdleHandles& pool = idle();
  {
    MutexLock lock(pool.mutex);
    if (!pool.handles.empty()) {
      CURL* easy = pool.handles.back();
      pool.handles.pop_back();
      return PooledEasyHandle(easy);
    }
  }
  return PooledEasyHandle(curl_easy_init());
}

size_t idle_easy_handles() {
  IdleHandles& pool = idle();
  MutexLock lock(pool.mutex);
  return pool.handles.size();
}

}  // namespace flowrun
