#include <algorithm>

#include "engine/io/byte_size.h"
#include "engine/io/http_client.h"
#include "engine/io/step_error.h"
#include "engine/step_api/http_request.h"
#include "engine/step_api/step_context.h"
#include "steps/basic/basic_steps.h"

namespace flowrun {
namespace {

class HttpStep final : public StepType {
 public:
  const StepInfo& info() const override {
    static const StepInfo info{
        .name = "http",
        .summary = "Send an HTTP request; JSON responses are parsed into outputs.json",
        .params = {
            {"url", ParamType::kString, true, "the address"},
            {"method", ParamType::kString, false, "GET (default), or POST when json/body is set"},
            {"headers", ParamType::kMap, false, "request headers (values may use secrets)"},
            {"query", ParamType::kMap, false, "query parameters, percent-encoded"},
            {"json", ParamType::kAny, false, "a JSON request body (sets Content-Type)"},
            {"body", ParamType::kString, false, "a raw request body"},
            {"expect", ParamType::kAny, false, "expected status code(s); default any 2xx"},
            {"timeout", ParamType::kDuration, false, "time limit of one request (default 60s)"},
            {"max_body", ParamType::kAny, false, "largest response body kept, after decompression (default 64MiB)"}}};
    return info;
  }

  void validate(const Json& with, std::vector<std::pair<std::string, std::string>>& problems) const override {
    if (with.contains("json") && with.contains("body"))
      problems.emplace_back("body", "give either json or body, not both");
    // An expression is checked when it is evaluated.
    if (with.contains("max_body") &&
        !(with["max_body"].is_string() && with["max_body"].get<std::string>().find("${{") != std::string::npos) &&
        !byte_size_param(with["max_body"]))
      problems.emplace_back("max_body", "give a positive size such as 1048576 or \"100MiB\"");
  }

  Json run(StepContext& ctx) const override {
    const Json& with = ctx.with();
    bool has_body = with.contains("json") || with.contains("body");
    HttpRequest req = request_from_json(with, has_body ? "POST" : "GET");
    std::transform(req.method.begin(), req.method.end(), req.method.begin(), ::toupper);
    if (auto t = ctx.duration_param("timeout")) req.timeout = *t;
    req.timeout = ctx.bounded(req.timeout);
    if (req.timeout <= Duration::zero()) throw StepError::timeout("no time left for the request");

    ctx.log().debug(req.method + " " + req.url);
    HttpResponse resp =
        send_expecting(ctx.services().http, req, ctx.cancel(), {.status = with.value("expect", Json())});
    Json outputs = {{"status", resp.status}, {"headers", resp.headers}};
    Json parsed = resp.body.empty() ? Json() : parse_json_limited(resp.body);
    if (!parsed.is_discarded() && !resp.body.empty())
      outputs["json"] = parsed;
    else
      outputs["body"] = resp.body;
    return outputs;
  }
};

}  // namespace

std::unique_ptr<StepType> make_http_step() { return std::make_unique<HttpStep>(); }

}  // namespace flowrun
