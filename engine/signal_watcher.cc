#include "engine/signal_watcher.h"

#include <pthread.h>
#include <unistd.h>

#include <iostream>
#include <string>

namespace flowrun {

SignalWatcher::SignalWatcher(CancelToken& token) : token_(token) {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  sigaddset(&set_, SIGUSR1);  // our own wake-up at shutdown
  pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  thread_ = std::thread([this] { loop(); });
}

SignalWatcher::~SignalWatcher() {
  stopping_ = true;
  pthread_kill(thread_.native_handle(), SIGUSR1);
  thread_.join();
}

void SignalWatcher::loop() {
  for (;;) {
    int sig = 0;
    if (sigwait(&set_, &sig) != 0) continue;
    if (sig == SIGUSR1) {
      if (stopping_) return;
      continue;
    }
    const char* name = sig == SIGINT ? "SIGINT" : "SIGTERM";
    if (++count_ == 1) {
      std::cerr << "\n" << name << ": stopping (again to exit at once)\n" << std::flush;
      token_.cancel(std::string("interrupted by ") + name);
    } else {
      std::cerr << "\n" << name << " again: exiting now\n" << std::flush;
      _exit(130);
    }
  }
}

}  // namespace flowrun
