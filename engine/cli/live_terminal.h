#pragma once
// The terminal a live table is drawn on, at its bottom, redrawn in place; finished items and the
// console's log lines are printed above it. Thread-safe: the recorder's callers feed it, a render
// thread redraws it at most ~4 times a second, the console gate prints through it.
#include <condition_variable>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "engine/cli/live_table.h"
#include "engine/io/clock.h"
#include "engine/io/logging.h"
#include "engine/io/mutex.h"

namespace flowrun {

// The terminal behind a LiveTerminal (the real one: stdout; tests: a string and a fixed size).
struct TerminalIo {
  std::function<void(std::string_view)> write;      // to the table's terminal
  std::function<std::pair<size_t, size_t>()> size;  // columns, rows
  bool console_shares_terminal = true;              // stderr is the same terminal
};
TerminalIo stdout_terminal();

class LiveTerminal {
 public:
  LiveTerminal(TerminalIo io, Clock& clock);
  ~LiveTerminal();
  // Starts the render thread.
  void start();
  // Changes the table (under the lock); drawn at the next refresh.
  void update(const std::function<void(LiveTable&, TimePoint now)>& change);
  // The console gate: the line is printed above the table (cleaned of escape sequences), or
  // dropped when the table on screen shows what it says.
  void console(const ConsoleLine& line, const std::function<void(std::string_view)>& print);
  // Redraws when the text changed (the render thread calls it); `force` redraws anyway.
  void refresh(bool force = false);
  // Removes the table from the screen, prints the lines still due, stops the render thread; for good.
  void stop();

 private:
  std::string erase_locked() REQUIRES(mutex_);
  std::string draw_locked(bool force) REQUIRES(mutex_);

  TerminalIo io_;
  Clock& clock_;
  Mutex mutex_;
  std::condition_variable wake_;
  LiveTable table_ GUARDED_BY(mutex_);
  std::vector<std::string> drawn_ GUARDED_BY(mutex_);  // the lines on screen now
  bool stopped_ GUARDED_BY(mutex_) = false;
  std::thread renderer_;
};

}  // namespace flowrun
