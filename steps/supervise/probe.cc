#include "steps/supervise/probe.h"

#include "engine/io/http_client.h"
#include "engine/io/process_runner.h"
#include "engine/io/step_error.h"
#include "engine/step_api/expressions.h"
#include "engine/step_api/http_request.h"
#include "engine/step_api/step_context.h"

namespace flowrun {
namespace {

Json object_from(const std::string& text, const std::string& what) {
  Json j = parse_json_limited(text);
  if (j.is_discarded() || !j.is_object())
    throw StepError::transient(what + " gave no JSON object: " + text.substr(0, 200));
  return j;
}

}  // namespace

Json run_probe(const Json& spec, StepContext& ctx) {
  if (spec.contains("http")) {
    const Json& h = spec["http"];
    HttpRequest req = request_from_json(h, "GET");
    req.timeout = ctx.bounded(json_to_duration(h.value("timeout", Json("30s"))).value_or(std::chrono::seconds(30)));
    if (req.timeout <= Duration::zero()) throw StepError::timeout("no time left for the probe");
    HttpResponse r = send_expecting(ctx.services().http, req, ctx.cancel(),
                                    {.what = "probe " + req.method + " " + req.url, .reason = ReasonInMessage::kNone});
    return object_from(r.body, "probe " + req.url);
  }
  if (spec.contains("exec")) {
    const Json& e = spec["exec"];
    ProcessSpec p;
    for (const Json& a : e.value("argv", Json::array()))
      p.argv.push_back(a.is_string() ? a.get<std::string>() : a.dump());
    if (p.argv.empty()) throw StepError::permanent("probe exec needs argv");
    const Json env = e.value("env", Json::object());
    for (const auto& [k, v] : env.items()) p.env[k] = v.is_string() ? v.get<std::string>() : v.dump();
    std::filesystem::path cwd = e.value("cwd", std::string("."));
    p.cwd = (cwd.is_relative() ? ctx.services().project_root / cwd : cwd).string();
    p.timeout = ctx.bounded(json_to_duration(e.value("timeout", Json("30s"))).value_or(std::chrono::seconds(30)));
    ProcessResult r = ctx.services().processes.run(p, ctx.cancel());
    if (r.timed_out) throw StepError::transient("probe " + p.argv[0] + " timed out");
    if (r.exit_code != 0)
      throw StepError::transient("probe " + p.argv[0] + " exited with " + std::to_string(r.exit_code) + ": " +
                                 r.err.substr(0, 200));
    return object_from(r.out, "probe " + p.argv[0]);
  }
  throw StepError::permanent("a probe is {http: {url: ...}} or {exec: {argv: [...]}}");
}

bool probe_condition(const std::string& condition, const Json& observation, const std::string& where) {
  Json scope = observation;
  scope["observation"] = observation;
  return evaluate_condition(condition, std::move(scope), where);
}

}  // namespace flowrun
