#pragma once
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/cancel_token.h"
#include "engine/duration.h"

namespace flowrun {

struct ProcessSpec {
  std::vector<std::string> argv;              // argv[0] is looked up on PATH when it has no '/'
  std::map<std::string, std::string> env;     // added to (or replacing) the inherited environment
  bool inherit_env = true;
  std::string cwd;                            // empty: the current directory
  std::optional<std::string> stdin_data;      // empty: stdin is /dev/null
  std::optional<Duration> timeout;            // real time; the process group is killed after it
  // Called with each complete line (and a final partial one), from a reader thread.
  std::function<void(std::string_view line, bool is_stderr)> on_line;
  size_t capture_limit = 4u << 20;            // bytes kept of each stream; the rest is counted
};

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  bool timed_out = false;
  std::string out;
  std::string err;
};

// Starts processes from an argument vector, never through a shell. Thread-safe.
class ProcessRunner {
 public:
  virtual ~ProcessRunner() = default;
  // Runs to completion, a time-out (result.timed_out) or cancellation (throws
  // StepError::cancelled). The process gets its own process group, which is sent SIGTERM and,
  // after a grace period, SIGKILL, so a shell's children stop too. Throws StepError::permanent
  // when the program cannot be found or started.
  virtual ProcessResult run(const ProcessSpec& spec, const CancelToken& cancel) = 0;
};

class SystemProcessRunner final : public ProcessRunner {
 public:
  ProcessResult run(const ProcessSpec& spec, const CancelToken& cancel) override;
};

}  // namespace flowrun
