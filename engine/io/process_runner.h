#pragma once
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/io/cancel_token.h"
#include "engine/io/duration.h"

namespace flowrun {

struct ProcessSpec {
  std::vector<std::string> argv;           // argv[0] is looked up on PATH when it has no '/'
  std::map<std::string, std::string> env;  // added to (or replacing) the inherited environment
  bool inherit_env = true;
  std::string cwd;                        // empty: the current directory
  std::optional<std::string> stdin_data;  // empty: stdin is /dev/null
  std::optional<Duration> timeout;        // real time; the process group is stopped after it
  // How long a stopped group has between SIGTERM and SIGKILL (to save its state and exit).
  Duration kill_grace = std::chrono::seconds(10);
  // Called with each line (and a final partial one, each cut at OutputCapture::kMaxLine bytes),
  // on the thread that called run() (on a pool thread when run() was called from a fiber).
  std::function<void(std::string_view line, bool is_stderr)> on_line;
  size_t capture_limit = 4u << 20;  // bytes kept of each stream; the rest is counted
  // Called once the process exists and before its program starts (it waits until this returns),
  // with its process group (= its pid) and start time (/proc/PID/stat field 22): a journal can
  // record the group before it can do anything. A throw stops the process; run() rethrows it.
  std::function<void(int pgid, const std::string& start_ticks)> on_started;
  // Called when the group announced by on_started is gone (also when the program failed to start).
  std::function<void(int pgid)> on_ended;
};

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  bool timed_out = false;
  bool outlived = false;  // processes the program left in its group ran on after it exited
  std::string out;        // at most capture_limit bytes
  std::string err;
  size_t out_dropped = 0;  // bytes written beyond capture_limit, not kept
  size_t err_dropped = 0;
};

// Starts processes from an argument vector, never through a shell. Thread-safe.
class ProcessRunner {
 public:
  virtual ~ProcessRunner() = default;
  // Runs until the process group is empty (the program and everything it left behind), a
  // time-out (result.timed_out) or cancellation (throws StepError::cancelled). The program starts
  // in a process group of its own with an empty signal mask and default signal dispositions; a
  // time-out or cancel sends the group SIGTERM and, after spec.kill_grace, SIGKILL. Throws
  // StepError::permanent when the program cannot be found or started.
  virtual ProcessResult run(const ProcessSpec& spec, const CancelToken& cancel) = 0;
};

class SystemProcessRunner final : public ProcessRunner {
 public:
  ProcessResult run(const ProcessSpec& spec, const CancelToken& cancel) override;
};

}  // namespace flowrun
