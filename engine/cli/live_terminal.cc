#include "engine/cli/live_terminal.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>

#include "engine/cli/terminal_text.h"

namespace flowrun {
namespace {

constexpr auto kRedrawEvery = std::chrono::milliseconds(250);
// Lines left for the scroll above the table.
constexpr size_t kScrollRoom = 8;

void write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text.remove_prefix(static_cast<size_t>(n));
  }
}

std::pair<size_t, size_t> window_size(int fd) {
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0 || ws.ws_row == 0) return {80, 24};
  return {ws.ws_col, ws.ws_row};
}

}  // namespace

TerminalIo stdout_terminal() {
  TerminalIo io;
  io.write = [](std::string_view text) { write_all(STDOUT_FILENO, text); };
  io.size = [] { return window_size(STDOUT_FILENO); };
  io.console_shares_terminal = ::isatty(STDERR_FILENO) == 1;
  return io;
}

LiveTerminal::LiveTerminal(TerminalIo io, Clock& clock) : io_(std::move(io)), clock_(clock) {}

LiveTerminal::~LiveTerminal() { stop(); }

void LiveTerminal::start() {
  renderer_ = std::thread([this] {
    MutexLock lock(mutex_);
    while (!stopped_) {
      lock.wait_for(wake_, kRedrawEvery, [this]() REQUIRES(mutex_) { return stopped_; });
      if (stopped_) break;
      const std::string text = draw_locked(false);
      if (!text.empty()) io_.write(text);
    }
  });
}

void LiveTerminal::update(const std::function<void(LiveTable&, TimePoint)>& change) {
  MutexLock lock(mutex_);
  change(table_, clock_.now());
  // An item that ended scrolls above the table at once, before what the run logs next.
  if (!stopped_ && table_.has_ended_lines()) io_.write(draw_locked(true));
}

void LiveTerminal::console(const ConsoleLine& line, const std::function<void(std::string_view)>& print) {
  MutexLock lock(mutex_);
  const bool shown_by_table = table_.log_line(line, clock_.now());
  if (stopped_ || !io_.console_shares_terminal) {
    // Not on this terminal's screen (or the table is gone): printed as it is.
    print(stopped_ && io_.console_shares_terminal ? terminal_safe(line.message, true) : std::string(line.message));
    return;
  }
  if (shown_by_table && !drawn_.empty()) return;
  io_.write(erase_locked());
  print(terminal_safe(line.message, true));
  io_.write(draw_locked(true));
}

void LiveTerminal::refresh(bool force) {
  MutexLock lock(mutex_);
  if (stopped_) return;
  const std::string text = draw_locked(force);
  if (!text.empty()) io_.write(text);
}

void LiveTerminal::stop() {
  {
    MutexLock lock(mutex_);
    if (stopped_) return;
    stopped_ = true;
    std::string text = erase_locked();
    for (const auto& line : table_.take_ended_lines(io_.size().first - 1)) text += line + "\n";
    if (!text.empty()) io_.write(text);
  }
  wake_.notify_all();
  if (renderer_.joinable()) renderer_.join();
}

std::string LiveTerminal::erase_locked() {
  if (drawn_.empty()) return "";
  // The cursor is at the start of the line below the table: up to its first line, clear to the end.
  std::string text = "\r\x1b[" + std::to_string(drawn_.size()) + "A\x1b[J";
  drawn_.clear();
  return text;
}

// The sequence that brings the screen from what is drawn to the table now (with the ended items'
// lines above it); empty when nothing changed. The last column stays free, so no line ever wraps
// and moving up drawn_.size() lines always reaches the table's first line.
std::string LiveTerminal::draw_locked(bool force) {
  const auto [columns, rows] = io_.size();
  const size_t width = columns > 1 ? columns - 1 : 0;
  std::vector<std::string> ended = table_.take_ended_lines(width);
  std::vector<std::string> lines;
  if (table_.visible() && columns >= 20 && rows >= 4)
    lines = table_.render(clock_.now(), width,
                          std::max<size_t>(2, std::min(rows - 2, rows > kScrollRoom + 2 ? rows - kScrollRoom : 2)));
  if (!force && ended.empty() && lines == drawn_) return "";
  std::string text = erase_locked();
  for (const auto& line : ended) text += line + "\n";
  for (const auto& line : lines) text += line + "\n";
  drawn_ = std::move(lines);
  return text;
}

}  // namespace flowrun
