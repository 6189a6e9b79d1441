#include "engine/load/loader.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <utility>

#include "engine/io/byte_size.h"
#include "engine/io/output_limit.h"
#include "engine/io/run_state.h"
#include "engine/io/utf8.h"
#include "engine/load/expression_names.h"
#include "engine/load/utf8_check.h"
#include "engine/lua/lua_step.h"
#include "engine/notify/channel.h"
#include "engine/notify/notify_events.h"
#include "engine/sandbox/expression.h"
#include "engine/sandbox/expression_functions.h"
#include "engine/step_api/step_registry.h"

// yaml-cpp names a missing key (the node `n["lua"]` returns when there is none) by streaming the
// key into a new std::stringstream, ~3,000 instructions; the loader asks each step for a dozen
// keys it does not have, which was 47,000 of the ~330,000 instructions of a `set` step. These
// give the same name by a copy (the template is yaml-cpp's, in the global namespace). Only this
// file uses yaml-cpp's nodes.
template <std::size_t N>
struct streamable_to_string<char[N], true> {
  static std::string impl(const char (&key)[N]) { return std::string(key); }
};
template <>
struct streamable_to_string<const char*, true> {
  static std::string impl(const char* key) { return std::string(key); }
};
template <>
struct streamable_to_string<std::string, true> {
  static std::string impl(const std::string& key) { return key; }
};

namespace flowrun {
namespace {

const std::vector<std::string> kTopKeys = {"version",  "name",  "description", "inputs",   "secrets", "env",
                                           "defaults", "steps", "finally",     "schedule", "notify"};
const std::vector<std::string> kScheduleKeys = {"every"};
const std::vector<std::string> kNotifyKeys = {"channels", "on", "digest", "grace"};
const std::vector<std::string> kNotifyRouteKeys = {"events", "to", "at_most"};
const std::vector<std::string> kRateLimitKeys = {"count", "per"};
const std::vector<std::string> kStepKeys = {"id",
                                            "name",
                                            "type",
                                            "lua",
                                            "with",
                                            "if",
                                            "retry",
                                            "timeout",
                                            "attempt_timeout",
                                            "continue_on_error",
                                            "for_each",
                                            "as",
                                            "concurrency",
                                            "tolerate",
                                            "steps",
                                            "finally",
                                            "env",
                                            "max_output"};
const std::vector<std::string> kRetryKeys = {"attempts", "on", "backoff", "max_elapsed"};
const std::vector<std::string> kBackoffKeys = {"initial", "factor", "max", "jitter"};
const std::vector<std::string> kInputKeys = {"default", "required", "description", "type"};
// The types `--set` text can be converted to.
const std::vector<ParamType> kInputTypes = {ParamType::kString,  ParamType::kNumber, ParamType::kInteger,
                                            ParamType::kBool,    ParamType::kList,   ParamType::kMap,
                                            ParamType::kDuration};
const std::vector<std::string> kDefaultsKeys = {"retry", "timeout", "attempt_timeout"};

// The globals every expression has besides the built-in functions and libraries; a loop
// variable of the same name would hide them.
const std::vector<std::string> kScopeNames = {"inputs", "steps", "env", "run", "secrets", "loop"};

const std::set<std::string> kLuaKeywords = {"and",      "break",  "do",   "else", "elseif", "end",  "false", "for",
                                            "function", "goto",   "if",   "in",   "local",  "nil",  "not",   "or",
                                            "repeat",   "return", "then", "true", "until",  "while"};

// An expression written somewhere in the file, checked once every step id is known.
struct ExpressionSite {
  std::string code;
  Location loc;
  std::string owner;                // the step it belongs to; empty for the workflow's `env`
  std::vector<std::string> loops;   // the for_each steps around it, outermost first
  std::vector<std::string> unseen;  // ids of `steps.X` it names that do not run before it
};

// Where a step sits: what encloses it decides which expressions may read its outputs.
struct StepPlace {
  std::vector<std::string> ancestors;  // enclosing steps (groups, loops, owners of nested lists)
  std::vector<std::string> loops;      // enclosing for_each steps, outermost first
};

class Loader {
 public:
  Loader(const std::string& path, const StepRegistry& registry, std::filesystem::path root)
      : path_(path), registry_(registry), root_(std::move(root)) {}

  std::optional<Workflow> load(const std::string& text, Diagnostics& diags) {
    diags_ = &diags;
    YAML::Node doc;
    try {
      doc = YAML::Load(text);
    } catch (const YAML::ParserException& e) {
      diags.error(loc(e.mark), "YAML syntax: " + e.msg, "check the indentation and quoting around this point");
      return std::nullopt;
    }
    Workflow wf;
    wf.path = path_;
    wf.source = text;
    wf.project_root = root_.string();
    if (!doc.IsMap()) {
      diags.error(doc.IsDefined() ? loc(doc) : Location{path_, 1, 1}, "a workflow file must be a mapping",
                  "start with `version: 1`, `name:` and `steps:`");
      return std::nullopt;
    }
    check_keys(doc, kTopKeys, "workflow");
    if (doc["version"]) {
      if (scalar(doc["version"]) != "1")
        diags.error(loc(doc["version"]), "unsupported version '" + scalar(doc["version"]) + "'",
                    "this flowrun reads `version: 1`");
    }
    wf.name = doc["name"] ? scalar(doc["name"]) : std::filesystem::path(path_).stem().string();
    if (doc["description"]) wf.description = scalar(doc["description"]);
    if (auto n = doc["inputs"]) parse_inputs(n, wf);
    if (auto n = doc["secrets"]) parse_secrets(n, wf);
    if (auto n = doc["env"]) wf.env = parse_env(n, "the workflow");
    if (auto n = doc["defaults"]) {
      if (!n.IsMap()) {
        diags.error(loc(n), "`defaults` must be a mapping", "for example `defaults: {retry: {attempts: 3}}`");
      } else {
        check_keys(n, kDefaultsKeys, "defaults");
        parse_policies(n, wf.defaults);
      }
    }
    if (auto n = doc["schedule"]) parse_schedule(n, wf);
    if (auto n = doc["notify"]) parse_notify(n, wf);
    if (!doc["steps"]) {
      diags.error(loc(doc), "the workflow has no `steps`", "add a `steps:` list");
    } else {
      wf.steps = parse_step_list(doc["steps"], "steps");
    }
    if (auto n = doc["finally"]) {
      all_visible_ = true;  // cleanup may read any step; one that did not run reads as nil
      wf.finally = parse_step_list(n, "finally");
    }
    check_expressions(wf);
    diags.sort_by_position();
    wf.script_types = std::move(script_types_);
    if (!diags.empty()) return std::nullopt;
    return wf;
  }

 private:
  Location loc(const YAML::Mark& m) const { return {path_, m.line + 1, m.column + 1}; }
  Location loc(const YAML::Node& n) const { return loc(n.Mark()); }

  std::string scalar(const YAML::Node& n) {
    if (!n.IsScalar()) {
      diags_->error(loc(n), "expected a single value here, not a " + std::string(n.IsMap() ? "mapping" : "list"));
      return {};
    }
    return n.Scalar();
  }

  // Reports unknown keys (with a suggestion) and duplicate keys of a mapping.
  void check_keys(const YAML::Node& map, const std::vector<std::string>& allowed, const std::string& what,
                  const std::vector<std::string>& extra = {}) {
    std::set<std::string> seen;
    for (const auto& kv : map) {
      std::string key = kv.first.Scalar();
      if (!seen.insert(key).second)
        diags_->error(loc(kv.first), "duplicate key '" + key + "' in " + what, "remove one of the two");
      bool known = std::find(allowed.begin(), allowed.end(), key) != allowed.end() ||
                   std::find(extra.begin(), extra.end(), key) != extra.end();
      if (known) continue;
      std::vector<std::string> all = allowed;
      all.insert(all.end(), extra.begin(), extra.end());
      std::string guess = closest_match(key, all);
      std::string hint = guess.empty() ? "allowed keys: " + join(all) : "did you mean '" + guess + "'?";
      diags_->error(loc(kv.first), "unknown key '" + key + "' in " + what, hint);
    }
  }

  static std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
    return out;
  }

  // YAML aliases share a node, but JSON copies it: nine levels of ten aliases ("billion laughs")
  // are 695 bytes of YAML and 10^9 JSON values. The whole file may expand to this many.
  static constexpr size_t kMaxYamlNodes = 1'000'000;

  // Reports the expansion past kMaxYamlNodes once, where it crossed the limit, and gives null.
  Json to_json(const YAML::Node& n) {
    if (too_many_nodes_) return nullptr;
    Json value = to_json_node(n);
    return too_many_nodes_ ? nullptr : value;
  }

  void report_too_many_nodes(const YAML::Mark& at) {
    too_many_nodes_ = true;
    diags_->error(loc(at), "this value expands to more than " + std::to_string(kMaxYamlNodes) + " YAML nodes",
                  "its aliases (*name) repeat other aliases; write the data out or load it from a file");
  }

  // Past the limit every node still to convert is null at once, so the rest of the walk is at
  // most the siblings of the nodes on the current path.
  Json to_json_node(const YAML::Node& n) {
    if (too_many_nodes_) return nullptr;
    if (++yaml_nodes_ > kMaxYamlNodes) {
      report_too_many_nodes(expanding_key_ ? *expanding_key_ : n.Mark());
      return nullptr;
    }
    switch (n.Type()) {
      case YAML::NodeType::Null:
        return nullptr;
      case YAML::NodeType::Scalar: {
        const std::string& s = n.Scalar();
        if (n.Tag() == "!") return s;  // quoted: always a string
        if (s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
        if (s == "true" || s == "True" || s == "TRUE") return true;
        if (s == "false" || s == "False" || s == "FALSE") return false;
        if (is_integer_text(s)) {
          try {
            return std::stoll(s);
          } catch (...) {
            return s;
          }
        }
        if (is_float_text(s)) return std::stod(s);
        return s;
      }
      case YAML::NodeType::Sequence: {
        Json arr = Json::array();
        for (const auto& item : n) arr.push_back(to_json_node(item));
        return arr;
      }
      case YAML::NodeType::Map: {
        Json obj = Json::object();
        for (const auto& kv : n) {
          expanding_key_ = kv.first.Mark();  // the key whose value was expanding names the place
          obj[kv.first.Scalar()] = to_json_node(kv.second);
        }
        return obj;
      }
      default:
        return nullptr;
    }
  }

  std::optional<Duration> duration(const YAML::Node& n, const std::string& what) {
    std::string text = scalar(n);
    auto d = parse_duration(text);
    if (!d)
      diags_->error(loc(n), "bad duration '" + text + "' for " + what,
                    "use a number with a unit: 250ms, 30s, 5m, 2h or 1h30m");
    return d;
  }

  void parse_schedule(const YAML::Node& n, Workflow& wf) {
    if (!n.IsMap() || !n["every"]) {
      diags_->error(loc(n), "`schedule` is a mapping with `every`", "for example `schedule: {every: 5m}`");
      return;
    }
    check_keys(n, kScheduleKeys, "schedule");
    wf.schedule_every = duration(n["every"], "schedule.every");
    if (wf.schedule_every && *wf.schedule_every <= Duration::zero()) {
      diags_->error(loc(n["every"]), "schedule.every must be longer than zero");
      wf.schedule_every.reset();
    }
  }

  void parse_notify(const YAML::Node& n, Workflow& wf) {
    if (!n.IsMap()) {
      diags_->error(loc(n), "`notify` is a mapping with `channels` and `on`",
                    "for example `notify: {channels: {team: {type: webhook, url: \"${{ inputs.hook }}\"}}, on: "
                    "[{events: [failed], to: [team]}]}`");
      return;
    }
    check_keys(n, kNotifyKeys, "notify");
    NotifySpec spec;
    std::set<std::string> names;
    if (auto channels = n["channels"]) {
      if (!channels.IsMap()) {
        diags_->error(loc(channels), "`notify.channels` must be a mapping of names to {type, ...}");
      } else {
        for (const auto& kv : channels) parse_notify_channel(kv.first, kv.second, spec, names);
      }
    }
    if (auto on = n["on"]) {
      if (!on.IsSequence()) {
        diags_->error(loc(on), "`notify.on` must be a list of {events, to}",
                      "for example `on: [{events: [failed, partial], to: [team]}]`");
      } else {
        for (const auto& route : on) parse_notify_route(route, spec, names);
      }
    }
    if (auto d = n["digest"]) {
      if (auto v = duration(d, "notify.digest")) {
        if (*v < Duration::zero())
          diags_->error(loc(d), "notify.digest must not be negative");
        else
          spec.digest = *v;
      }
    }
    if (auto g = n["grace"]) {
      if (auto v = duration(g, "notify.grace")) {
        if (*v < Duration::zero() || *v > std::chrono::minutes(10))
          diags_->error(loc(g), "notify.grace must be between 0s and 10m",
                        "it is how long the process waits at its end to deliver what is due");
        else
          spec.grace = *v;
      }
    }
    wf.notify = std::move(spec);
  }

  void parse_notify_channel(const YAML::Node& key, const YAML::Node& value, NotifySpec& spec,
                            std::set<std::string>& names) {
    NotifyChannel channel;
    channel.name = key.Scalar();
    channel.loc = loc(key);
    if (!names.insert(channel.name).second) {
      diags_->error(channel.loc, "duplicate channel '" + channel.name + "' in notify.channels",
                    "remove one of the two");
      return;
    }
    if (!value.IsMap() || !value["type"]) {
      diags_->error(loc(value), "channel '" + channel.name + "' must be a mapping with `type`",
                    "for example `" + channel.name + ": {type: webhook, url: \"${{ inputs.notify_webhook }}\"}`");
      return;
    }
    channel.type = scalar(value["type"]);
    const auto types = channel_types();
    if (std::find(types.begin(), types.end(), channel.type) == types.end()) {
      std::string guess = closest_match(channel.type, types);
      diags_->error(loc(value["type"]), "unknown channel type '" + channel.type + "'",
                    guess.empty() ? "use one of: " + join(types) : "did you mean '" + guess + "'?");
      return;
    }
    for (const auto& kv : value) {
      if (kv.first.Scalar() == "type") continue;
      channel.settings[kv.first.Scalar()] = to_json(kv.second);
    }
    note_expressions(value);
    if (const Channel* impl = channel_for(channel.type)) {
      for (const auto& problem : impl->check(channel.settings))
        diags_->error(loc(value), "channel '" + channel.name + "' (" + channel.type + "): " + problem);
    }
    spec.channels.push_back(std::move(channel));
  }

  void parse_notify_route(const YAML::Node& n, NotifySpec& spec, const std::set<std::string>& names) {
    if (!n.IsMap()) {
      diags_->error(loc(n), "a `notify.on` entry is a mapping with `events` and `to`",
                    "for example `{events: [failed], to: [team]}`");
      return;
    }
    check_keys(n, kNotifyRouteKeys, "a notify.on entry");
    NotifyRoute route;
    route.loc = loc(n);
    auto names_in = [&](const char* key, std::vector<std::string>& out) {
      YAML::Node list = n[key];
      if (!list) {
        diags_->error(loc(n), std::string("a notify.on entry needs `") + key + "`");
        return;
      }
      if (list.IsScalar()) {
        out.push_back(list.Scalar());
        return;
      }
      if (!list.IsSequence()) {
        diags_->error(loc(list), std::string("`") + key + "` must be a list of names");
        return;
      }
      for (const auto& item : list) out.push_back(scalar(item));
    };
    names_in("events", route.events);
    YAML::Node events = n["events"];
    for (size_t i = 0; i < route.events.size(); ++i) {
      const std::string& e = route.events[i];
      if (is_notify_event(e)) continue;
      YAML::Node at = events && events.IsSequence() ? events[i] : events;
      std::string guess = closest_match(e, notify_event_names());
      diags_->error(at ? loc(at) : route.loc, "unknown event '" + e + "'",
                    guess.empty() ? "events: " + join(notify_event_names()) : "did you mean '" + guess + "'?");
    }
    names_in("to", route.to);
    YAML::Node to = n["to"];
    const std::vector<std::string> known(names.begin(), names.end());
    for (size_t i = 0; i < route.to.size(); ++i) {
      const std::string& c = route.to[i];
      if (names.count(c)) continue;
      YAML::Node at = to && to.IsSequence() ? to[i] : to;
      std::string guess = closest_match(c, known);
      diags_->error(at ? loc(at) : route.loc, "notify.on names unknown channel '" + c + "'",
                    guess.empty() ? "declare it under notify.channels" : "did you mean '" + guess + "'?");
    }
    if (auto limit = n["at_most"]) {
      if (!limit.IsMap() || !limit["count"] || !limit["per"]) {
        diags_->error(loc(limit), "`at_most` is a mapping with `count` and `per`",
                      "for example `at_most: {count: 1, per: 10m}`");
      } else {
        check_keys(limit, kRateLimitKeys, "at_most");
        NotifyRateLimit rate;
        const std::string count = scalar(limit["count"]);
        static const std::regex positive("[1-9][0-9]{0,5}");
        if (!std::regex_match(count, positive))
          diags_->error(loc(limit["count"]), "at_most.count must be a whole number from 1, got '" + count + "'");
        else
          rate.count = std::stoi(count);
        auto per = duration(limit["per"], "at_most.per");
        if (per && *per <= Duration::zero()) diags_->error(loc(limit["per"]), "at_most.per must be longer than zero");
        if (per) rate.per = *per;
        route.at_most = rate;
      }
    }
    spec.routes.push_back(std::move(route));
  }

  void parse_inputs(const YAML::Node& n, Workflow& wf) {
    if (!n.IsMap()) {
      diags_->error(loc(n), "`inputs` must be a mapping of name to {default, required, description}");
      return;
    }
    for (const auto& kv : n) {
      InputSpec in;
      in.name = kv.first.Scalar();
      in.loc = loc(kv.first);
      if (!is_identifier(in.name))
        diags_->error(in.loc, "input name '" + in.name + "' is not an identifier",
                      "use letters, digits and underscores, so `inputs." + in.name + "` works in expressions");
      const YAML::Node& spec = kv.second;
      if (spec.IsMap()) {
        check_keys(spec, kInputKeys, "input '" + in.name + "'");
        if (spec["default"]) in.default_value = to_json(spec["default"]);
        if (spec["required"]) in.required = bool_value(spec["required"], "required");
        if (spec["description"]) in.description = scalar(spec["description"]);
        if (auto t = spec["type"]) {
          const std::string name = scalar(t);
          in.type = parse_param_type(name);
          if (!in.type || std::find(kInputTypes.begin(), kInputTypes.end(), *in.type) == kInputTypes.end()) {
            in.type.reset();
            std::vector<std::string> names;
            for (ParamType known : kInputTypes) names.push_back(to_string(known));
            std::string guess = closest_match(name, names);
            diags_->error(loc(t), "unknown input type '" + name + "'",
                          guess.empty() ? "use one of: " + join(names) : "did you mean '" + guess + "'?");
          }
        }
      } else {
        in.default_value = to_json(spec);  // `name: value` is shorthand for a default
      }
      wf.inputs.push_back(std::move(in));
    }
  }

  void parse_secrets(const YAML::Node& n, Workflow& wf) {
    if (!n.IsSequence()) {
      diags_->error(loc(n), "`secrets` must be a list of environment variable names",
                    "for example `secrets: [API_KEY]`");
      return;
    }
    for (const auto& item : n) wf.secrets.push_back(scalar(item));
  }

  // `env:` of the workflow or of a step: NAME -> a single value, which may hold ${{ }}.
  Json parse_env(const YAML::Node& n, const std::string& whose) {
    Json env = Json::object();
    if (!n.IsMap()) {
      diags_->error(loc(n), "`env` of " + whose + " must be a mapping of names to values",
                    "for example `env: {LOG_LEVEL: debug, TOKEN: \"${{ secrets.TOKEN }}\"}`");
      return env;
    }
    for (const auto& kv : n) {
      std::string name = kv.first.Scalar();
      if (!is_identifier(name)) {
        diags_->error(loc(kv.first), "env name '" + name + "' is not an identifier",
                      "use letters, digits and underscores (e.g. `" + sanitize(name) + "`), so `env." + sanitize(name) +
                          "` works in expressions");
        continue;
      }
      if (!kv.second.IsScalar() && !kv.second.IsNull()) {
        diags_->error(loc(kv.second),
                      "env value '" + name + "' must be a single value, not a " +
                          std::string(kv.second.IsMap() ? "mapping" : "list"),
                      "environment variables are text: quote it, or write `${{ toJSON(...) }}`");
        continue;
      }
      Json value = to_json(kv.second);
      if (value.is_null()) value = "";
      if (value.is_string()) note_expression_text(value.get<std::string>(), loc(kv.second), false);
      env[name] = value;
    }
    return env;
  }

  bool bool_value(const YAML::Node& n, const std::string& what) {
    Json v = to_json(n);
    if (!v.is_boolean()) {
      diags_->error(loc(n), "`" + what + "` must be true or false");
      return false;
    }
    return v.get<bool>();
  }

  int int_value(const YAML::Node& n, const std::string& what, int min) {
    Json v = to_json(n);
    if (!v.is_number_integer() || v.get<int64_t>() < min) {
      diags_->error(loc(n), "`" + what + "` must be a whole number of at least " + std::to_string(min));
      return min;
    }
    return static_cast<int>(v.get<int64_t>());
  }

  void parse_policies(const YAML::Node& n, StepPolicies& p) {
    if (auto r = n["retry"]) p.retry = parse_retry(r);
    if (auto t = n["timeout"]) p.timeout = duration(t, "timeout");
    if (auto t = n["attempt_timeout"]) p.attempt_timeout = duration(t, "attempt_timeout");
  }

  RetryPolicy parse_retry(const YAML::Node& n) {
    RetryPolicy r;
    if (n.IsScalar()) {  // `retry: 3`
      r.attempts = int_value(n, "retry", 1);
      return r;
    }
    if (!n.IsMap()) {
      diags_->error(loc(n), "`retry` must be a number of attempts or a mapping",
                    "for example `retry: {attempts: 3, on: [transient]}`");
      return r;
    }
    check_keys(n, kRetryKeys, "retry");
    if (auto a = n["attempts"]) r.attempts = int_value(a, "attempts", 1);
    if (auto on = n["on"]) {
      r.on.clear();
      std::vector<YAML::Node> items;
      if (on.IsSequence())
        for (const auto& i : on) items.push_back(i);
      else
        items.push_back(on);
      for (const auto& i : items) {
        std::string c = scalar(i);
        if (auto condition = parse_retry_condition(c))
          r.on.push_back(*condition);
        else
          diags_->error(loc(i), "unknown retry condition '" + c + "'",
                        "use transient, timeout, http_429, http_5xx, exit:N or any");
      }
    }
    if (auto b = n["backoff"]) {
      if (!b.IsMap()) {
        diags_->error(loc(b), "`backoff` must be a mapping",
                      "for example `backoff: {initial: 5s, factor: 2, max: 60s}`");
      } else {
        check_keys(b, kBackoffKeys, "backoff");
        if (auto i = b["initial"]) r.backoff.initial = duration(i, "backoff.initial").value_or(r.backoff.initial);
        if (auto m = b["max"]) r.backoff.max = duration(m, "backoff.max").value_or(r.backoff.max);
        if (auto f = b["factor"]) {
          Json v = to_json(f);
          if (!v.is_number() || v.get<double>() < 1.0)
            diags_->error(loc(f), "`factor` must be a number of at least 1");
          else
            r.backoff.factor = v.get<double>();
        }
        if (auto j = b["jitter"]) {
          std::string s = scalar(j);
          if (s == "none")
            r.backoff.jitter = Jitter::kNone;
          else if (s == "full")
            r.backoff.jitter = Jitter::kFull;
          else if (s == "equal")
            r.backoff.jitter = Jitter::kEqual;
          else
            diags_->error(loc(j), "unknown jitter '" + s + "'", "use none, full or equal");
        }
      }
    }
    if (auto m = n["max_elapsed"]) r.max_elapsed = duration(m, "max_elapsed");
    return r;
  }

  std::vector<Step> parse_step_list(const YAML::Node& n, const std::string& what) {
    std::vector<Step> out;
    if (!n.IsSequence()) {
      diags_->error(loc(n), "`" + what + "` must be a list of steps", "start each step with `- id: ...`");
      return out;
    }
    for (const auto& item : n) {
      if (!item.IsMap()) {
        diags_->error(loc(item), "a step must be a mapping",
                      "for example `- {id: hello, type: log, with: {message: hi}}`");
        continue;
      }
      out.push_back(parse_step(item));
      see(out.back().id);
    }
    return out;
  }

  Step parse_step(const YAML::Node& n) {
    Step s;
    s.loc = loc(n);
    const StepType* type = nullptr;
    if (auto t = n["type"]) {
      s.type = scalar(t);
      type = registry_.find(s.type);
      if (!type) {
        std::string guess = closest_match(s.type, registry_.names());
        diags_->error(loc(t), "unknown step type '" + s.type + "'",
                      guess.empty() ? "`flowrun steps` lists every step type" : "did you mean '" + guess + "'?");
      }
    }
    if (auto l = n["lua"]) {
      if (n["type"]) diags_->error(loc(l), "a step has either `type` or `lua`, not both");
      s.type = "lua";
      type = load_script(l, s);
    }
    std::vector<std::string> nested = type ? type->info().nested_lists : std::vector<std::string>{};
    check_keys(n, kStepKeys, "step", nested);

    if (auto id = n["id"]) {
      s.id = scalar(id);
      if (!is_identifier(s.id))
        diags_->error(loc(id), "step id '" + s.id + "' is not an identifier",
                      "use letters, digits and underscores (e.g. `" + sanitize(s.id) + "`), so `steps." +
                          sanitize(s.id) + "` works in expressions");
      else if (!ids_.insert(s.id).second)
        diags_->error(loc(id), "duplicate step id '" + s.id + "'", "every step id must be unique in the workflow");
    }
    if (auto nm = n["name"]) s.name = scalar(nm);
    if (s.id.empty()) s.id = sanitize(s.type.empty() ? "group" : s.type) + "_" + std::to_string(++anonymous_);
    places_[s.id] = {ancestors_, loops_};
    std::string outer_owner = std::exchange(owner_, s.id);

    if (n["for_each"]) {
      s.kind = Step::Kind::kForEach;
      const auto& fe = n["for_each"];
      s.for_each = to_json(fe);
      if (s.for_each.is_string()) {
        note_expression_text(s.for_each.get<std::string>(), loc(fe), true);
      } else if (!s.for_each.is_array()) {
        diags_->error(loc(fe), "`for_each` must be a list or an expression giving one");
      }
      if (auto as = n["as"]) {
        s.as = scalar(as);
        if (!is_identifier(s.as))
          diags_->error(loc(as), "`as` must be an identifier", "for example `as: video`");
        else
          check_loop_variable(s.as, loc(as));
      }
      if (auto c = n["concurrency"]) {
        if (c.IsScalar() && c.Scalar().find("${{") != std::string::npos) {
          s.concurrency_expr = c.Scalar();  // e.g. ${{ inputs.concurrency }}, read when the loop starts
          note_expression_text(s.concurrency_expr, loc(c), false);
        } else {
          s.concurrency = int_value(c, "concurrency", 1);
        }
      }
      if (auto t = n["tolerate"]) parse_tolerance(t, s);
      if (!n["steps"]) diags_->error(s.loc, "a `for_each` step needs `steps` to run for each item");
      if (n["type"] || n["lua"]) diags_->error(s.loc, "a `for_each` step has `steps`, not its own `type`");
    } else if (n["steps"]) {
      s.kind = Step::Kind::kGroup;
      if (n["type"] || n["lua"]) diags_->error(loc(n["steps"]), "a step with `steps` is a group and has no `type`");
    } else if (!n["type"] && !n["lua"]) {
      diags_->error(s.loc, "the step has no `type`",
                    "add `type:` (see `flowrun steps`), `lua:`, `steps:` or `for_each:`");
    }
    for (const char* key : {"as", "concurrency", "tolerate"})
      if (n[key] && !n["for_each"])
        diags_->error(loc(n[key]), std::string("`") + key + "` only applies to a `for_each` step");

    if (auto w = n["with"]) {
      s.with_loc = loc(w);
      if (!w.IsMap()) {
        diags_->error(loc(w), "`with` must be a mapping of parameter names to values");
      } else {
        s.with = to_json(w);
        if (s.kind != Step::Kind::kAction) diags_->error(loc(w), "`with` only applies to a step with a `type`");
        note_expressions(w);
        if (type) check_params(w, *type, s);
      }
    } else if (type) {
      check_params(YAML::Node(YAML::NodeType::Map), *type, s);
    }
    if (auto c = n["if"]) {
      s.if_expr = scalar(c);
      note_expression_text(s.if_expr, loc(c), true);
    }
    if (auto e = n["env"]) s.env = parse_env(e, "step '" + s.id + "'");
    parse_policies(n, s.policies);
    if (auto c = n["continue_on_error"]) s.continue_on_error = bool_value(c, "continue_on_error");
    if (auto m = n["max_output"]) {
      s.max_output = m.IsScalar() ? parse_byte_size(std::string_view(m.Scalar())) : std::nullopt;
      if (!s.max_output) diags_->error(loc(m), "bad size for max_output", "for example `max_output: 64MiB`");
    }

    // What runs inside the step sees the steps before it, not the step itself. A loop's body
    // and its finally run per item: after the loop, only the loop's own outputs are visible.
    ancestors_.push_back(s.id);
    const bool loop = s.kind == Step::Kind::kForEach;
    const size_t visible_mark = seen_order_.size();
    if (loop) loops_.push_back(s.id);
    if (auto st = n["steps"]) s.steps = parse_step_list(st, "steps");
    if (auto f = n["finally"]) {
      if (s.kind == Step::Kind::kAction)
        diags_->error(loc(f), "`finally` belongs to a group or a `for_each`, not a single step",
                      "wrap the step in `steps:` or put the cleanup in the workflow's `finally`");
      s.finally = parse_step_list(f, "finally");
    }
    if (loop) {
      loops_.pop_back();
      forget_since(visible_mark);
    }
    for (const auto& key : nested)
      if (auto list = n[key]) s.nested[key] = parse_step_list(list, key);
    ancestors_.pop_back();
    owner_ = outer_owner;
    return s;
  }

  static std::string sanitize(const std::string& id) {
    std::string out;
    for (char c : id) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out = "s_" + out;
    return out;
  }

  void parse_tolerance(const YAML::Node& t, Step& s) {
    Tolerance tol;
    if (!t.IsMap()) {
      diags_->error(loc(t), "`tolerate` must be a mapping", "for example `tolerate: {count: 2}` or `{percent: 10}`");
      return;
    }
    check_keys(t, {"count", "percent", "outcome"}, "tolerate");
    if (auto o = t["outcome"]) {
      const std::optional<RunState> outcome = parse_run_state(scalar(o));
      if (outcome == RunState::kSucceeded)
        tol.partial_is_success = true;
      else if (outcome != RunState::kPartial)
        diags_->error(loc(o), "`outcome` of `tolerate` is partial (the default) or succeeded",
                      "succeeded: tolerated failures leave the run succeeded");
    }
    if (auto c = t["count"]) tol.count = int_value(c, "count", 0);
    if (auto p = t["percent"]) {
      Json v = to_json(p);
      if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > 100)
        diags_->error(loc(p), "`percent` must be a number from 0 to 100");
      else
        tol.percent = v.get<double>();
    }
    s.tolerate = tol;
  }

  const StepType* load_script(const YAML::Node& l, Step& s) {
    std::string rel = scalar(l);
    std::filesystem::path file = std::filesystem::path(rel).is_absolute() ? std::filesystem::path(rel) : root_ / rel;
    s.lua_path = file.lexically_normal().string();
    if (auto it = script_types_.find(s.lua_path); it != script_types_.end()) return it->second.get();
    if (!std::filesystem::exists(file)) {
      diags_->error(loc(l), "Lua script not found: " + rel, "paths are relative to " + root_.string());
      return nullptr;
    }
    auto type = load_lua_script_type(file, rel, loc(l), *diags_);
    if (!type) return nullptr;
    auto* raw = type.get();
    script_types_[s.lua_path] = std::move(type);
    return raw;
  }

  void check_params(const YAML::Node& with, const StepType& type, const Step& s) {
    const auto& info = type.info();
    std::vector<std::string> names;
    for (const auto& p : info.params) names.push_back(p.name);
    bool accepts_any = std::find(names.begin(), names.end(), "*") != names.end();
    if (with.IsMap() && !accepts_any) check_keys(with, names, "`with` of step '" + s.id + "' (" + info.name + ")");
    for (const auto& p : info.params) {
      if (p.name == "*") continue;
      YAML::Node v = with.IsMap() ? with[p.name] : YAML::Node();
      if (!v) {
        if (p.required)
          diags_->error(s.with_loc.line ? s.with_loc : s.loc,
                        "step '" + s.id + "' (" + info.name + ") needs parameter '" + p.name + "'", p.description);
        continue;
      }
      check_param_type(v, p);
    }
    std::vector<std::pair<std::string, std::string>> problems;
    type.validate(with.IsMap() ? to_json(with) : Json::object(), problems);
    for (const auto& [param, message] : problems) {
      YAML::Node at = with.IsMap() ? with[param] : YAML::Node();
      diags_->error(at ? loc(at) : s.loc, message);
    }
  }

  void check_param_type(const YAML::Node& v, const ParamSpec& p) {
    Json value = to_json(v);
    if (value.is_string() && value.get<std::string>().find("${{") != std::string::npos) return;
    if (value_has_type(value, p.type)) return;
    std::string hint;
    if (p.type == ParamType::kDuration) hint = "use a number with a unit: 250ms, 30s, 5m, 2h or 1h30m";
    if (p.type == ParamType::kBool) hint = "write true or false";
    std::string what = p.type == ParamType::kDuration && value.is_primitive() ? "bad duration '" + to_text(value) + "'"
                                                                              : "expected " + to_string(p.type);
    diags_->error(loc(v), what + " for parameter '" + p.name + "'", hint);
  }

  static std::string to_text(const Json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

  // From now on expressions may read steps.<id> (the step has run before them).
  void see(const std::string& id) {
    if (visible_.insert(id).second) seen_order_.push_back(id);
  }

  // Hides again the steps seen since `mark` (a loop's body, once the loop is parsed).
  void forget_since(size_t mark) {
    while (seen_order_.size() > mark) {
      visible_.erase(seen_order_.back());
      seen_order_.pop_back();
    }
  }

  void check_loop_variable(const std::string& name, const Location& at) {
    const auto& builtin = expression_builtin_names();
    bool scope = std::find(kScopeNames.begin(), kScopeNames.end(), name) != kScopeNames.end();
    if (!scope && std::find(builtin.begin(), builtin.end(), name) == builtin.end()) return;
    diags_->error(
        at, "loop variable '" + name + "' hides the expression global '" + name + "'",
        "inside the loop `" + name + "` would be the item; choose another name, for example `as: " + name + "_item`");
  }

  // Records every ${{ }} inside a YAML subtree for the reference check.
  void note_expressions(const YAML::Node& n) {
    if (too_many_nodes_) return;  // walking the expansion again would take as long
    if (++noted_nodes_ > kMaxYamlNodes) return report_too_many_nodes(n.Mark());
    if (n.IsScalar()) {
      note_expression_text(n.Scalar(), loc(n), false);
    } else if (n.IsSequence() || n.IsMap()) {
      for (const auto& item : n) {
        if (n.IsMap())
          note_expressions(item.second);
        else
          note_expressions(item);
      }
    }
  }

  // `bare`: the text is an expression even without ${{ }} (if:, for_each:).
  void note_expression_text(const std::string& text, const Location& at, bool bare) {
    std::optional<size_t> unterminated;
    auto spans = find_expressions(text, &unterminated);
    if (unterminated) diags_->error(at, "`${{` without a closing `}}`", "close the expression with `}}`");
    if (spans.empty() && bare) {
      add_site(text, at);
      return;
    }
    for (const auto& span : spans) add_site(span.code, at);
  }

  // The site remembers which steps it names that have not run before it; whether they exist at
  // all is known only at the end.
  void add_site(const std::string& code, const Location& at) {
    ExpressionSite site{code, at, owner_, loops_, {}};
    if (!all_visible_) {
      std::string stripped = strip_strings(code);
      for (const std::string& id : dotted_names(stripped, "steps")) {
        if (!visible_.count(id) && std::find(site.unseen.begin(), site.unseen.end(), id) == site.unseen.end())
          site.unseen.push_back(id);
      }
    }
    sites_.push_back(std::move(site));
  }

  void check_expressions(const Workflow& wf) {
    std::set<std::string> inputs;
    for (const auto& in : wf.inputs) inputs.insert(in.name);
    std::set<std::string> secrets(wf.secrets.begin(), wf.secrets.end());
    for (const auto& site : sites_) {
      if (auto err = expression_syntax_error(site.code)) {
        diags_->error(site.loc, "expression `" + site.code + "` does not parse: " + *err,
                      "expressions are Lua: use `and`, `or`, `not`, `==` and `~=`");
        continue;
      }
      std::string code = strip_strings(site.code);
      for (const std::string& id : dotted_names(code, "steps")) {
        if (!ids_.count(id)) {
          std::string guess = closest_match(id, std::vector<std::string>(ids_.begin(), ids_.end()));
          diags_->error(site.loc, "expression refers to unknown step '" + id + "'",
                        guess.empty() ? "step ids are set with `id:`" : "did you mean '" + guess + "'?");
        }
      }
      for (const auto& id : site.unseen)
        if (ids_.count(id)) check_runs_before(site, id);
      check_secrets(site, code, secrets);
      check_calls(site, code);
      for (const std::string& name : dotted_names(code, "inputs")) {
        if (!inputs.count(name)) {
          std::string guess = closest_match(name, std::vector<std::string>(inputs.begin(), inputs.end()));
          diags_->error(site.loc, "expression refers to undeclared input '" + name + "'",
                        guess.empty() ? "declare it under `inputs:`" : "did you mean '" + guess + "'?");
        }
      }
    }
  }

  // `id` exists but does not run before the site: say why.
  void check_runs_before(const ExpressionSite& site, const std::string& id) {
    const std::string who = site.owner.empty() ? "the workflow's `env`" : "step '" + site.owner + "'";
    const StepPlace& target = places_[id];
    if (site.owner.empty()) {
      diags_->error(site.loc, who + " refers to steps." + id + ", which runs after it",
                    "the workflow's `env` is evaluated before any step; use the step's own `env`");
      return;
    }
    if (id == site.owner) {
      diags_->error(site.loc,
                    who + " refers to its own outputs (steps." + id + "), which are set only after it has run",
                    "read them in a later step");
      return;
    }
    const auto& around = places_[site.owner].ancestors;
    if (std::find(around.begin(), around.end(), id) != around.end()) {
      diags_->error(site.loc, who + " refers to steps." + id + ", which contains it and finishes after it",
                    "read steps." + id + " in a step after '" + id + "'");
      return;
    }
    for (const auto& loop : target.loops) {
      if (std::find(site.loops.begin(), site.loops.end(), loop) != site.loops.end()) continue;
      diags_->error(
          site.loc,
          who + " refers to steps." + id + ", which is not run before it (it is inside for_each '" + loop + "')",
          "a loop's steps run once per item; after the loop read steps." + loop + ".outputs.items");
      return;
    }
    diags_->error(site.loc, who + " refers to steps." + id + ", which runs after it",
                  "a step reads the outputs of the steps before it; move '" + id + "' earlier");
  }

  void check_secrets(const ExpressionSite& site, const std::string& code, const std::set<std::string>& secrets) {
    for (const std::string& name : dotted_names(code, "secrets")) {
      if (secrets.count(name)) continue;
      std::string guess = closest_match(name, std::vector<std::string>(secrets.begin(), secrets.end()));
      diags_->error(site.loc, "expression refers to undeclared secret '" + name + "'",
                    (guess.empty() ? "" : "did you mean '" + guess + "'? If not, ") + "add " + name +
                        " to `secrets:` (it is read from the environment variable of that name)");
    }
  }

  // Every plain call `name(` must name a function the sandbox has; `x.f(` and `x:f(` are not checked.
  void check_calls(const ExpressionSite& site, const std::string& code) {
    const auto& known = expression_callable_names();
    for (const std::string& name : called_names(code)) {
      if (kLuaKeywords.count(name) || std::find(known.begin(), known.end(), name) != known.end()) continue;
      std::string guess = closest_match(name, known);
      diags_->error(site.loc, "expression calls unknown function '" + name + "'",
                    guess.empty() ? "expressions can call " + join(expression_function_names()) +
                                        " and Lua's base functions (tostring, tonumber, type, pairs, ...)"
                                  : "did you mean '" + guess + "'?");
    }
  }

  // Blanks out string literals so that "steps.x" inside quotes is not taken for a reference.
  static std::string strip_strings(const std::string& code) {
    std::string out = code;
    char quote = 0;
    for (size_t i = 0; i < out.size(); ++i) {
      char c = out[i];
      if (quote) {
        if (c == '\\') {
          out[i] = ' ';
          if (i + 1 < out.size()) out[++i] = ' ';
          continue;
        }
        if (c == quote)
          quote = 0;
        else
          out[i] = ' ';
      } else if (c == '"' || c == '\'') {
        quote = c;
      }
    }
    return out;
  }

  std::string path_;
  const StepRegistry& registry_;
  std::filesystem::path root_;
  Diagnostics* diags_ = nullptr;
  size_t yaml_nodes_ = 0;                    // converted to JSON so far, aliases expanded
  std::optional<YAML::Mark> expanding_key_;  // the last map key converted to JSON
  size_t noted_nodes_ = 0;                   // walked by note_expressions, aliases expanded
  bool too_many_nodes_ = false;
  std::set<std::string> ids_;
  std::vector<ExpressionSite> sites_;
  std::map<std::string, StepPlace> places_;
  std::string owner_;                    // the step being parsed
  std::vector<std::string> ancestors_;   // the steps around it
  std::vector<std::string> loops_;       // the for_each steps around it
  std::set<std::string> visible_;        // steps that run before the expressions being read
  std::vector<std::string> seen_order_;  // visible_ in the order seen, to hide a loop's body again
  bool all_visible_ = false;             // in the workflow's `finally`
  std::map<std::string, std::shared_ptr<StepType>> script_types_;
  int anonymous_ = 0;
};

}  // namespace

std::filesystem::path find_project_root(const std::string& workflow_path) {
  auto dir = std::filesystem::absolute(workflow_path).parent_path();
  for (auto candidate : {dir, dir.parent_path()})
    if (std::filesystem::is_directory(candidate / "scripts")) return candidate;
  return std::filesystem::current_path();
}

LoadResult load_workflow_text(const std::string& text, const std::string& path, const StepRegistry& registry,
                              const std::filesystem::path& project_root) {
  LoadResult result;
  result.source = text;
  check_valid_utf8(text, path, result.diagnostics);
  Loader loader(path, registry, project_root);
  result.workflow = loader.load(text, result.diagnostics);
  return result;
}

LoadResult load_workflow_file(const std::string& path, const StepRegistry& registry) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult result;
    result.diagnostics.error({path, 0, 0}, "cannot read the workflow file: " + std::string(std::strerror(errno)));
    return result;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return load_workflow_text(buffer.str(), path, registry, find_project_root(path));
}

}  // namespace flowrun
