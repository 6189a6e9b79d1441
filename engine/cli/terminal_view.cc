#include "engine/cli/terminal_view.h"

#include <unistd.h>

#include <cstdlib>
#include <string_view>

#include "engine/cli/commands.h"
#include "engine/cli/live_terminal.h"

namespace flowrun {
namespace {

// Ends a run's table: off the screen, and the console printing straight to stderr again.
void end_table(const std::shared_ptr<LiveTerminal>& terminal) {
  if (!terminal) return;
  terminal->stop();
  set_console_gate(nullptr);
}

class LiveTableRecorder final : public ForwardingRecorder {
 public:
  LiveTableRecorder(std::unique_ptr<ExecutionRecorder> inner, std::shared_ptr<LiveTerminal> terminal)
      : ForwardingRecorder(std::move(inner)), terminal_(std::move(terminal)) {}
  ~LiveTableRecorder() override { end_table(terminal_); }

  void step_started(const std::string& path, int attempt) override {
    ForwardingRecorder::step_started(path, attempt);
    terminal_->update([&](LiveTable& table, TimePoint now) { table.step_started(path, now); });
  }
  void step_finished(const std::string& path, const std::string& status, int attempts, const Json& outputs,
                     const std::string& error_kind, const std::string& error, Durability durability) override {
    ForwardingRecorder::step_finished(path, status, attempts, outputs, error_kind, error, durability);
    terminal_->update([&](LiveTable& table, TimePoint now) { table.step_finished(path, status, now); });
  }
  void event(const std::string& path, const std::string& kind, const std::string& message, const Json& data) override {
    ForwardingRecorder::event(path, kind, message, data);
    terminal_->update([&](LiveTable& table, TimePoint now) { table.event(path, kind, data, now); });
  }
  void live(const std::string& path, const Json& patch) override {
    ForwardingRecorder::live(path, patch);
    terminal_->update([&](LiveTable& table, TimePoint now) { table.live(path, patch, now); });
  }

 private:
  std::shared_ptr<LiveTerminal> terminal_;
};

class TerminalView final : public RunObserver {
 public:
  std::unique_ptr<ExecutionRecorder> run_started(const RunContext& run,
                                                 std::unique_ptr<ExecutionRecorder> recorder) override {
    (void)run;
    end_table(terminal_);
    terminal_ = std::make_shared<LiveTerminal>(stdout_terminal(), clock_);
    set_console_gate(
        [terminal = terminal_](const ConsoleLine& line, const std::function<void(std::string_view)>& print) {
          terminal->console(line, print);
        });
    terminal_->start();
    return live_table_recorder(std::move(recorder), terminal_);
  }
  // Before the summary is printed.
  void run_ending(const RunContext& run, RunState state, const RunResult& result) override {
    (void)run, (void)state, (void)result;
    end_table(terminal_);
  }
  void run_ended(const RunContext& run, RunState state) override {
    (void)run, (void)state;
    end_table(terminal_);
    terminal_.reset();
  }
  ~TerminalView() override { end_table(terminal_); }

 private:
  RealClock clock_;
  std::shared_ptr<LiveTerminal> terminal_;
};

}  // namespace

std::unique_ptr<ExecutionRecorder> live_table_recorder(std::unique_ptr<ExecutionRecorder> inner,
                                                       std::shared_ptr<LiveTerminal> terminal) {
  return std::make_unique<LiveTableRecorder>(std::move(inner), std::move(terminal));
}

std::unique_ptr<RunObserver> make_terminal_view(const ExecOptions& o) {
  if (o.no_live || o.log_format != "text" || ::isatty(STDOUT_FILENO) != 1) return nullptr;
  const char* term = std::getenv("TERM");
  if (!term || std::string_view(term) == "dumb" || std::string_view(term).empty()) return nullptr;
  return std::make_unique<TerminalView>();
}

}  // namespace flowrun
