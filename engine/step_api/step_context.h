#pragma once
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "engine/io/cancel_token.h"
#include "engine/io/clock.h"
#include "engine/io/json.h"
#include "engine/io/json_parse.h"  // steps parse JSON from outside with parse_json_limited
#include "engine/io/logging.h"

namespace flowrun {

class ExecutionRecorder;
class HttpClient;
class ProcessRunner;
class Redactor;
struct Step;

// The outside world as steps see it; every piece is an interface so tests can fake it.
// Borrowed from whoever runs the workflow, and outliving every step.
struct Services {
  HttpClient& http;
  ProcessRunner& processes;
  Clock& clock;
  const Redactor& redactor;
  std::filesystem::path project_root;    // where scripts/ and relative paths resolve
  std::filesystem::path state_dir = {};  // the run journal's directory; local instances live under it
  // The run's journal (none without one), where steps record what must outlive a crash of
  // flowrun: the process groups they start.
  ExecutionRecorder* recorder = nullptr;
};

// What one attempt of one step sees. Created by the executor for each attempt.
class StepContext {
 public:
  StepContext(const Step& step, const Json& with, std::string path, int attempt, Services& services,
              const CancelToken& cancel, std::optional<TimePoint> deadline, StepLog log)
      : step_(step),
        with_(with),
        path_(std::move(path)),
        attempt_(attempt),
        services_(services),
        cancel_(cancel),
        deadline_(deadline),
        log_(std::move(log)) {}

  // The step's definition as loaded; engine-side step types (lua) read it, built-in ones need only
  // their parameters (with()) and step_id().
  const Step& step() const { return step_; }
  const std::string& step_id() const;
  const Json& with() const { return with_; }
  const std::string& path() const { return path_; }  // "videos[2].provision"
  int attempt() const { return attempt_; }
  Services& services() const { return services_; }
  Clock& clock() const { return services_.clock; }
  const CancelToken& cancel() const { return cancel_; }
  const StepLog& log() const { return log_; }
  std::optional<TimePoint> deadline() const { return deadline_; }

  // Time left before this attempt's deadline (never negative), or nullopt without one.
  std::optional<Duration> remaining() const;
  // Shortens `wanted` to the remaining time.
  Duration bounded(Duration wanted) const;
  // Sleeps honouring cancel and deadline. Throws StepError cancelled, or timeout when the
  // deadline comes first.
  void sleep(Duration d) const;
  // Throws StepError cancelled or timeout when either has happened.
  void check_interrupts() const;

  // Runs one of the step's nested step lists (e.g. on_stall) in the current scope, merging
  // `extra_scope` into it. Set by the executor; returns the list's outputs by step id.
  std::function<Json(const std::string& list, const Json& extra_scope)> run_nested;
  // The run this attempt belongs to; set by the executor (labels instances for re-entry).
  std::string run_id;
  // The environment programs started by the step get: the process's, with the workflow's and
  // the enclosing steps' `env:` over it. Set by the executor; null in tests that build a context.
  const Json* env = nullptr;

  // Parameter helpers: the value, or `fallback` when absent or null.
  std::string string_param(const std::string& key, const std::string& fallback = {}) const;
  std::optional<Duration> duration_param(const std::string& key) const;
  // Throws StepError::permanent when present but not a boolean.
  bool bool_param(const std::string& key, bool fallback) const;
  // A number, or a string holding one (an expression's text); nullopt when absent or null.
  // Throws StepError::permanent for anything else: a price cap must never be silently dropped.
  std::optional<double> number_param(const std::string& key) const;
  int int_param(const std::string& key, int fallback) const;

 private:
  const Step& step_;
  const Json& with_;
  std::string path_;
  int attempt_;
  Services& services_;
  const CancelToken& cancel_;
  std::optional<TimePoint> deadline_;
  StepLog log_;
};

// Reads a duration parameter: "30s" style strings, or a number of seconds.
std::optional<Duration> json_to_duration(const Json& value);

// obj[key] as a number (a string holding one counts); nullopt when absent or null. Throws
// StepError::permanent for anything else.
std::optional<double> json_number(const Json& obj, const std::string& key);
// obj[key] as a whole number, and as a duration; nullopt when absent or null. Throw
// StepError::permanent for anything else. The StepContext *_param readers use these.
std::optional<int> json_int(const Json& obj, const std::string& key);
std::optional<Duration> json_duration(const Json& obj, const std::string& key);

}  // namespace flowrun
