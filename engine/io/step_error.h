#pragma once
#include <optional>
#include <stdexcept>
#include <string>

#include "engine/io/duration.h"
#include "engine/io/json.h"

namespace flowrun {

enum class ErrorKind {
  kTransient,  // network trouble, HTTP 429 and 5xx: worth retrying
  kPermanent,  // bad input, other 4xx, a fail_on pattern: retrying will not help
  kTimeout,    // an attempt or the whole step ran out of time
  kCancelled,  // the run was cancelled (Ctrl+C, SIGTERM, a failing sibling)
  kExit,       // a process exited non-zero; see exit_code
};

// The one error type a step throws. Only the executor catches it and applies the retry policy.
// Run time has no other channel: an adapter's own small error (SqliteError, RegexError,
// LuaError, ExpressionError) is converted to a StepError where a step calls the adapter, and
// anything else that reaches the executor fails the step as "internal error". Load time reports
// into Diagnostics (engine/model/diagnostics.h) and throws nothing.
class StepError : public std::runtime_error {
 public:
  StepError(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}

  static StepError transient(const std::string& m) { return {ErrorKind::kTransient, m}; }
  static StepError permanent(const std::string& m) { return {ErrorKind::kPermanent, m}; }
  static StepError timeout(const std::string& m) { return {ErrorKind::kTimeout, m}; }
  static StepError cancelled(const std::string& m) { return {ErrorKind::kCancelled, m}; }
  static StepError exit(int code, const std::string& m);
  // 429 and 5xx are transient, every other status permanent.
  static StepError http(int status, const std::string& m, std::optional<Duration> retry_after = {});

  ErrorKind kind() const { return kind_; }
  int exit_code() const { return exit_code_; }
  int http_status() const { return http_status_; }
  std::optional<Duration> retry_after() const { return retry_after_; }
  StepError& with_retry_after(std::optional<Duration> d) {
    retry_after_ = d;
    return *this;
  }
  // What the step found before it failed (a poller's failure context, a supervisor's report):
  // kept as the failed step's outputs, so `finally` steps and reports can read them.
  StepError& with_outputs(Json outputs) {
    outputs_ = std::move(outputs);
    return *this;
  }
  const Json& outputs() const { return outputs_; }

  // "transient", "permanent", "timeout", "cancelled", "exit:3"; HTTP errors add "(http 429)".
  std::string kind_name() const;

 private:
  ErrorKind kind_;
  int exit_code_ = 0;
  int http_status_ = 0;
  std::optional<Duration> retry_after_;
  Json outputs_;  // null: none
};

// Parses a kind name as written in YAML or by flow.fail(): transient, permanent, timeout.
std::optional<ErrorKind> parse_error_kind(const std::string& name);

}  // namespace flowrun
