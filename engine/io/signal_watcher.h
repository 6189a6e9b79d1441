#pragma once
#include <signal.h>

#include <atomic>
#include <thread>

#include "engine/io/cancel_token.h"

namespace flowrun {

// Turns SIGINT and SIGTERM into cancellation, on a thread of its own (a signal handler may not
// take the locks that cancelling needs). The first signal cancels `token`; the second exits the
// process at once with code 130. Construct it before starting any other thread: it blocks the
// signals for every thread created afterwards.
class SignalWatcher {
 public:
  // `json_messages`: what it prints on a signal is a JSON object (--log-format json).
  explicit SignalWatcher(CancelToken& token, bool json_messages = false);
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;
  bool interrupted() const { return count_ > 0; }

 private:
  void loop();
  void say(const std::string& text) const;
  CancelToken& token_;
  bool json_messages_;
  sigset_t set_;
  std::atomic<int> count_{0};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace flowrun
