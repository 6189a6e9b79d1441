#pragma once
#include <signal.h>

namespace flowrun {

// Blocks every signal in the calling thread for its lifetime, so that the threads started inside
// the scope (a server's accept and connection threads) take none: SIGINT and SIGTERM stay for the
// process's SignalWatcher, whenever that one starts. Restores the mask on the way out, throws included.
class NoSignalsForNewThreads {
 public:
  NoSignalsForNewThreads() {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &before_);
  }
  ~NoSignalsForNewThreads() { pthread_sigmask(SIG_SETMASK, &before_, nullptr); }
  NoSignalsForNewThreads(const NoSignalsForNewThreads&) = delete;
  NoSignalsForNewThreads& operator=(const NoSignalsForNewThreads&) = delete;

 private:
  sigset_t before_;
};

}  // namespace flowrun
