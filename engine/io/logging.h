#pragma once
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/io/redactor.h"

namespace spdlog {
namespace sinks {
class sink;
}
}  // namespace spdlog

namespace flowrun {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

struct LogOptions {
  enum class Format { kText, kJson };
  Format format = Format::kText;
  LogLevel console_level = LogLevel::kInfo;
  bool console = true;   // write to stderr
  std::string file;      // also write here (always at debug level) when not empty
  bool capture = false;  // keep formatted lines in memory (tests)
};

class LogHub;
class NamedLogger;

// A logger for one step (or the workflow itself), named by its path. Every message passes
// through the redactor before any sink sees it. Cheap to copy; thread-safe.
class StepLog {
 public:
  void debug(std::string_view message) const;
  void info(std::string_view message) const;
  void warn(std::string_view message) const;
  void error(std::string_view message) const;
  void log(LogLevel level, std::string_view message) const;
  const std::string& name() const { return name_; }

 private:
  friend class LogHub;
  StepLog(std::shared_ptr<NamedLogger> logger, const Redactor* redactor, std::string name)
      : logger_(std::move(logger)), redactor_(redactor), name_(std::move(name)) {}
  std::shared_ptr<NamedLogger> logger_;  // the hub's, shared by all its step logs
  const Redactor* redactor_;
  std::string name_;
};

// Owns the sinks: stderr as "HH:MM:SS LEVEL [step] message" (coloured on a terminal) or JSON
// lines, an optional log file, and an optional in-memory capture. The redactor is borrowed.
class LogHub {
 public:
  LogHub(const LogOptions& options, const Redactor& redactor);
  ~LogHub();
  StepLog logger(const std::string& name) const;
  std::vector<std::string> captured() const;  // the lines seen so far, when capture is on
  void flush() const;

 private:
  struct CaptureBuffer;
  std::vector<std::shared_ptr<spdlog::sinks::sink>> sinks_;
  std::shared_ptr<NamedLogger> logger_;  // over sinks_
  std::shared_ptr<CaptureBuffer> capture_;
  const Redactor& redactor_;
};

std::optional<LogLevel> parse_log_level(std::string_view name);

// A console line on its way to stderr: the logger (a step path), the level, the redacted message.
struct ConsoleLine {
  LogLevel level;
  std::string_view logger;
  std::string_view message;
};
// While a gate is set, every console line (of every LogHub) goes through it: the gate calls
// `print` with the message to write (cleaned, say) or not at all (to drop it), so a live
// terminal view can clear its drawing around the line. Process-wide, as stderr is;
// set_console_gate(nullptr) removes it and returns once no call is in flight.
using ConsoleGate = std::function<void(const ConsoleLine& line, const std::function<void(std::string_view)>& print)>;
void set_console_gate(ConsoleGate gate);
// Writes `text` as it is on stderr (a notice outside the log: "SIGINT: stopping"), through the
// console gate when one is set.
void console_notice(std::string_view text);

}  // namespace flowrun
