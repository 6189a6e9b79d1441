#pragma once
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/io/duration.h"
#include "engine/io/json.h"
#include "engine/io/param_type.h"

namespace flowrun {

class StepContext;

// One parameter of a step type, for validation and for `flowrun steps`.
struct ParamSpec {
  std::string name = {};
  ParamType type = ParamType::kAny;
  bool required = false;
  std::string description = {};
};

struct StepInfo {
  std::string name = {};
  std::string summary = {};
  std::vector<ParamSpec> params = {};
  std::vector<std::string> nested_lists = {};  // step-level keys holding step lists (e.g. on_stall)
  bool side_effects = true;                    // false: safe to run in --dry-run
  bool poller = false;
  bool own_threshold = false;  // a poller whose `threshold` means something else (stall-check)
  Duration default_interval{std::chrono::seconds(5)};
  std::optional<Duration> default_timeout = std::nullopt;
};

enum class PollStatus { kDone, kPending, kFailed };

struct PollResult {
  PollStatus status = PollStatus::kPending;
  Json outputs = Json::object();
  std::string message;  // why it failed, or a progress note
};

// The state of one polling step execution; the executor owns the loop around poll().
class Poller {
 public:
  virtual ~Poller() = default;
  // One observation. Throws StepError for a probe that failed: transient ones are backed off
  // and polled again, others end the attempt.
  virtual PollResult poll(StepContext& ctx) = 0;
};

// A built-in or Lua step type. Stateless and shared by every execution; thread-safe.
// run() and poll() run on their for_each item's fiber, beside the other items'
// (engine/io/fiber_scheduler.h): they wait through their context (ctx.sleep, the clock), make
// requests through services().http and start programs through services().processes, which all
// let the other items go on; any other call that blocks for long goes through run_blocking().
class StepType {
 public:
  virtual ~StepType() = default;
  virtual const StepInfo& info() const = 0;

  // Checks a step's literal parameters beyond the generic ones (known keys, required, types),
  // adding (param, message) pairs. Values that are still expressions are left alone.
  virtual void validate(const Json& with, std::vector<std::pair<std::string, std::string>>& problems) const {
    (void)with;
    (void)problems;
  }

  // Runs one attempt and returns the outputs. Throws StepError. Only for non-pollers.
  virtual Json run(StepContext& ctx) const;
  // Starts one attempt of a poller. Only for pollers.
  virtual std::unique_ptr<Poller> start_polling(StepContext& ctx) const;
};

}  // namespace flowrun
