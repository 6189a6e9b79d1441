#include "engine/io/signal_watcher.h"

#include <pthread.h>
#include <unistd.h>

#include <iostream>
#include <string>

#include "engine/io/logging.h"

namespace flowrun {

SignalWatcher::SignalWatcher(CancelToken& token, bool json_messages) : token_(token), json_messages_(json_messages) {
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

void SignalWatcher::say(const std::string& text) const {
  if (json_messages_)
    std::cerr << "{\"level\":\"WARN\",\"message\":\"" << text << "\"}\n" << std::flush;
  else
    console_notice("\n" + text + "\n");  // above a live table, when one is drawn
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
      say(std::string(name) + ": stopping (again to exit at once)");
      token_.cancel(std::string("interrupted by ") + name);
    } else {
      say(std::string(name) + " again: exiting now");
      _exit(130);
    }
  }
}

}  // namespace flowrun
