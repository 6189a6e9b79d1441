#include "engine/io/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>

#include "engine/io/json.h"
#include "engine/io/mutex.h"
#include "engine/io/utc_time.h"
#include "engine/io/utf8.h"

namespace flowrun {
namespace {

const char* level_word(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return "TRACE";
    case spdlog::level::debug:
      return "DEBUG";
    case spdlog::level::info:
      return "INFO";
    case spdlog::level::warn:
      return "WARN";
    case spdlog::level::err:
      return "ERROR";
    case spdlog::level::critical:
      return "FATAL";
    default:
      return "";
  }
}

// %L in spdlog is a single letter; we want the whole word in capitals.
class LevelWordFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    std::string_view word = level_word(msg.level);
    dest.append(word.data(), word.data() + word.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<LevelWordFlag>(); }
};

std::unique_ptr<spdlog::formatter> text_formatter() {
  auto f = std::make_unique<spdlog::pattern_formatter>();
  f->add_flag<LevelWordFlag>('*');
  f->set_pattern("%H:%M:%S %^%*%$ [%n] %v");
  return f;
}

std::string iso_time(spdlog::log_clock::time_point t) {
  return rfc3339_ms(std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count());
}

// One JSON object a line: {"time","level","step","message"}.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    Json line = {{"time", iso_time(msg.time)},
                 {"level", level_word(msg.level)},
                 {"step", std::string(msg.logger_name.begin(), msg.logger_name.end())},
                 {"message", std::string(msg.payload.begin(), msg.payload.end())}};
    std::string text = dump_json(line) + "\n";
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

// NO_COLOR (no-color.org) wins; FORCE_COLOR colours a pipe too (CI logs that render ANSI);
// otherwise colour only a terminal.
spdlog::color_mode console_color_mode() {
  const char* no_color = std::getenv("NO_COLOR");
  if (no_color && *no_color) return spdlog::color_mode::never;
  const char* force = std::getenv("FORCE_COLOR");
  if (force && *force && std::string_view(force) != "0") return spdlog::color_mode::always;
  return isatty(STDERR_FILENO) ? spdlog::color_mode::automatic : spdlog::color_mode::never;
}

spdlog::level::level_enum to_spdlog(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarn:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

LogLevel from_spdlog(spdlog::level::level_enum level) {
  if (level <= spdlog::level::debug) return LogLevel::kDebug;
  if (level == spdlog::level::info) return LogLevel::kInfo;
  if (level == spdlog::level::warn) return LogLevel::kWarn;
  return LogLevel::kError;
}

struct ConsoleGateSlot {
  Mutex mutex;
  ConsoleGate gate GUARDED_BY(mutex);
};

ConsoleGateSlot& console_gate_slot() {
  static ConsoleGateSlot slot;
  return slot;
}

// The stderr sink behind the console gate; the gate's lock is held through the write so that
// removing the gate waits for a line being printed.
class GatedConsoleSink final : public spdlog::sinks::sink {
 public:
  explicit GatedConsoleSink(std::shared_ptr<spdlog::sinks::sink> inner) : inner_(std::move(inner)) {}
  void log(const spdlog::details::log_msg& msg) override {
    ConsoleGateSlot& slot = console_gate_slot();
    MutexLock lock(slot.mutex);
    if (!slot.gate) return inner_->log(msg);
    const ConsoleLine line{from_spdlog(msg.level), std::string_view(msg.logger_name.data(), msg.logger_name.size()),
                           std::string_view(msg.payload.data(), msg.payload.size())};
    slot.gate(line, [&](std::string_view message) {
      spdlog::details::log_msg copy = msg;
      copy.payload = spdlog::string_view_t(message.data(), message.size());
      inner_->log(copy);
    });
  }
  void flush() override { inner_->flush(); }
  void set_pattern(const std::string& pattern) override { inner_->set_pattern(pattern); }
  void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override {
    inner_->set_formatter(std::move(formatter));
  }

 private:
  std::shared_ptr<spdlog::sinks::sink> inner_;
};

}  // namespace

void set_console_gate(ConsoleGate gate) {
  ConsoleGateSlot& slot = console_gate_slot();
  MutexLock lock(slot.mutex);
  slot.gate = std::move(gate);
}

void console_notice(std::string_view text) {
  const auto write = [](std::string_view t) {
    std::fwrite(t.data(), 1, t.size(), stderr);
    std::fflush(stderr);
  };
  ConsoleGateSlot& slot = console_gate_slot();
  MutexLock lock(slot.mutex);
  if (slot.gate)
    slot.gate(ConsoleLine{LogLevel::kWarn, "", text}, write);
  else
    write(text);
}

struct LogHub::CaptureBuffer {
  Mutex mutex;
  std::vector<std::string> lines GUARDED_BY(mutex);
};

namespace {
class CaptureSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit CaptureSink(std::function<void(std::string)> out) : out_(std::move(out)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    std::string line(buf.data(), buf.size());
    while (!line.empty() && line.back() == '\n') line.pop_back();
    out_(std::move(line));
  }
  void flush_() override {}

 private:
  std::function<void(std::string)> out_;
};
}  // namespace

// One spdlog logger for a hub, each record named by its step. A logger per step (spdlog names
// records by their logger) cost about 300 bytes for each of 10,000 waiting items.
class NamedLogger final : public spdlog::logger {
 public:
  using spdlog::logger::logger;
  void log_as(std::string_view name, spdlog::level::level_enum level, std::string_view message) {
    if (!should_log(level)) return;
    // As spdlog::logger::log: the sinks, their errors reported, a flush when due.
    log_it_(spdlog::details::log_msg(name, level, message), true, false);
  }
};

LogHub::LogHub(const LogOptions& options, const Redactor& redactor) : redactor_(redactor) {
  auto make_formatter = [&]() -> std::unique_ptr<spdlog::formatter> {
    if (options.format == LogOptions::Format::kJson) return std::make_unique<JsonFormatter>();
    return text_formatter();
  };
  if (options.console) {
    auto sink =
        std::make_shared<GatedConsoleSink>(std::make_shared<spdlog::sinks::stderr_color_sink_mt>(console_color_mode()));
    sink->set_formatter(make_formatter());
    sink->set_level(to_spdlog(options.console_level));
    sinks_.push_back(sink);
  }
  if (!options.file.empty()) {
    // Rotated (FILE, FILE.1 .. FILE.3 at 64 MiB each): a service logging for months must not
    // fill the disk.
    // Owner-only like the journal, the rotated files too: the log holds what steps printed.
    spdlog::file_event_handlers handlers;
    handlers.after_open = [](const spdlog::filename_t&, std::FILE* f) { ::fchmod(::fileno(f), 0600); };
    auto sink = std::make_shared<spdlog::sinks::rotating_file_sink_mt>(options.file, 64u << 20, 3, false, handlers);
    sink->set_formatter(make_formatter());
    sink->set_level(spdlog::level::debug);
    sinks_.push_back(sink);
  }
  if (options.capture) {
    capture_ = std::make_shared<CaptureBuffer>();
    auto buffer = capture_;
    auto sink = std::make_shared<CaptureSink>([buffer](std::string line) {
      MutexLock lock(buffer->mutex);
      buffer->lines.push_back(std::move(line));
    });
    sink->set_formatter(make_formatter());
    sink->set_level(spdlog::level::debug);
    sinks_.push_back(sink);
  }
  logger_ = std::make_shared<NamedLogger>("flowrun", sinks_.begin(), sinks_.end());
  logger_->set_level(spdlog::level::debug);
  logger_->flush_on(spdlog::level::debug);
}

LogHub::~LogHub() { flush(); }

StepLog LogHub::logger(const std::string& name) const { return StepLog(logger_, &redactor_, name); }

std::vector<std::string> LogHub::captured() const {
  if (!capture_) return {};
  MutexLock lock(capture_->mutex);
  return capture_->lines;
}

void LogHub::flush() const {
  for (const auto& sink : sinks_) sink->flush();
}

void StepLog::log(LogLevel level, std::string_view message) const {
  std::string clean = redactor_->redact(message);
  logger_->log_as(name_, to_spdlog(level), clean);
}
void StepLog::debug(std::string_view m) const { log(LogLevel::kDebug, m); }
void StepLog::info(std::string_view m) const { log(LogLevel::kInfo, m); }
void StepLog::warn(std::string_view m) const { log(LogLevel::kWarn, m); }
void StepLog::error(std::string_view m) const { log(LogLevel::kError, m); }

std::optional<LogLevel> parse_log_level(std::string_view name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "info") return LogLevel::kInfo;
  if (name == "warn" || name == "warning") return LogLevel::kWarn;
  if (name == "error") return LogLevel::kError;
  return std::nullopt;
}

}  // namespace flowrun
