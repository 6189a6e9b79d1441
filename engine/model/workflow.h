#pragma once
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/io/duration.h"
#include "engine/io/json.h"
#include "engine/io/param_type.h"
#include "engine/io/retry_policy.h"
#include "engine/model/diagnostics.h"

namespace flowrun {

class StepType;

struct InputSpec {
  std::string name;
  std::optional<Json> default_value;  // may hold ${{ env.X }} expressions
  bool required = false;
  // Declared with `type:` (any type but `any` and `string|list`); unset: the type of the default.
  std::optional<ParamType> type;
  std::string description;
  Location loc;
};

// Timeouts and retry as written; unset fields inherit from the workflow's `defaults`.
struct StepPolicies {
  std::optional<RetryPolicy> retry;
  std::optional<Duration> timeout;          // the whole step, retries included
  std::optional<Duration> attempt_timeout;  // one attempt
};

// How many iterations of a for_each may fail before the for_each itself fails.
struct Tolerance {
  int count = 0;
  double percent = 0;
  // `outcome: succeeded`: tolerated failures leave the run succeeded instead of partial.
  bool partial_is_success = false;
};

struct Step {
  enum class Kind { kAction, kForEach, kGroup };

  std::string id;
  std::string name;  // optional display name
  Kind kind = Kind::kAction;
  Location loc;

  // kAction
  std::string type;      // registered step type; "lua" for `lua:` steps
  std::string lua_path;  // for `lua:` steps, resolved against the project root
  Json with = Json::object();
  Location with_loc;
  // Step lists a type declares besides `steps`/`finally` (stall-check's `on_stall`).
  std::map<std::string, std::vector<Step>> nested;

  // `env:` NAME -> scalar, values may hold ${{ }}: added to the workflow's env for this step.
  Json env = Json::object();

  std::string if_expr;  // empty: always runs
  StepPolicies policies;
  bool continue_on_error = false;
  // `max_output:` bytes of JSON the step's outputs may take (kDefaultMaxOutput when unset).
  std::optional<size_t> max_output;

  // kForEach
  Json for_each;  // a list, or an expression (string) giving one
  std::string as = "item";
  int concurrency = 1;
  std::string concurrency_expr;  // when set, an expression giving `concurrency` at run time
  std::optional<Tolerance> tolerate;

  // kForEach (the body, per item) and kGroup
  std::vector<Step> steps;
  std::vector<Step> finally;  // kForEach: per item; kGroup: once
};

// `notify:` of a workflow: named channels, routes from event kinds to channels, and how they are
// paced. Channel settings may hold ${{ }} (inputs, env, secrets), resolved when a run starts; a
// channel whose url/argv resolves to empty is off.
struct NotifyChannel {
  std::string name;
  std::string type;                // webhook, slack, email, exec (engine/notify/channel.h)
  Json settings = Json::object();  // everything but `type`, as written
  Location loc;
};
struct NotifyRateLimit {
  int count = 1;
  Duration per{0};
};
struct NotifyRoute {
  std::vector<std::string> events;         // event kinds (engine/notify/notify_events.h)
  std::vector<std::string> to;             // channel names
  std::optional<NotifyRateLimit> at_most;  // per channel and event kind
  Location loc;
};
struct NotifySpec {
  std::vector<NotifyChannel> channels;
  std::vector<NotifyRoute> routes;
  Duration digest{0};  // zero: item events go out one by one
  Duration grace{std::chrono::seconds(10)};
};

struct Workflow {
  std::string path;
  std::string source;        // the file's text, for error carets
  std::string project_root;  // where scripts/ is looked up
  int version = 1;
  std::string name;
  std::string description;
  std::vector<InputSpec> inputs;
  std::vector<std::string> secrets;
  // `env:` NAME -> scalar (string, number or bool), values may hold ${{ }}: every step's env.
  Json env = Json::object();
  StepPolicies defaults;
  // `schedule: {every: 5m}`: run a tick every period until stopped (--once runs one).
  std::optional<Duration> schedule_every;
  std::vector<Step> steps;
  std::vector<Step> finally;
  std::optional<NotifySpec> notify;
  // The step types of `lua:` steps, by resolved script path; loaded once by the loader.
  std::map<std::string, std::shared_ptr<StepType>> script_types;
};

// Every name a step path below `steps` can contain: step ids at any depth (bodies, finally,
// nested lists) and the names of nested lists ("on_stall"). Used to match journal paths and
// per-item outputs to the workflow.
void collect_step_names(const std::vector<Step>& steps, std::set<std::string>& out);

// The retry policy, timeout and attempt timeout that apply to `step`.
StepPolicies effective_policies(const Step& step, const Workflow& workflow);

}  // namespace flowrun
