// `queue`: enqueue work over HTTP (POST by default), e.g. POST /api/processing/batch?limit=10000.
// Retried like an http step: 429 and 5xx are transient, with the server's Retry-After.

#include "engine/io/http_client.h"
#include "engine/io/json_text.h"
#include "engine/io/step_error.h"
#include "engine/step_api/http_request.h"
#include "engine/step_api/step_context.h"
#include "steps/basic/basic_steps.h"

namespace flowrun {
namespace {

class QueueStep final : public StepType {
 public:
  const StepInfo& info() const override {
    static const StepInfo info{
        .name = "queue",
        .summary = "Enqueue work over HTTP (POST by default); the response's count field becomes outputs.count",
        .params = {{"url", ParamType::kString, true, "the enqueue endpoint"},
                   {"method", ParamType::kString, false, "default POST"},
                   {"headers", ParamType::kMap, false, ""},
                   {"query", ParamType::kMap, false, "e.g. {limit: 10000}"},
                   {"json", ParamType::kAny, false, "a JSON body"},
                   {"body", ParamType::kString, false, "a raw body"},
                   {"expect", ParamType::kAny, false, "expected status(es); default any 2xx"},
                   {"count_field", ParamType::kString, false,
                    "the response field holding how many were queued (default: queued, count or enqueued)"},
                   {"timeout", ParamType::kDuration, false, "one request (default 60s)"}}};
    return info;
  }

  Json run(StepContext& ctx) const override {
    Json spec = ctx.with();
    spec.erase("expect");
    HttpRequest req = request_from_json(spec, "POST");
    req.timeout = ctx.bounded(ctx.duration_param("timeout").value_or(std::chrono::seconds(60)));
    if (req.timeout <= Duration::zero()) throw StepError::timeout("no time left for the request");
    HttpResponse r = send_expecting(ctx.services().http, req, ctx.cancel(),
                                    {.status = ctx.with().value("expect", Json()), .reason = ReasonInMessage::kAlways});
    Json body = parse_json_limited(r.body);
    Json out = {{"status", r.status}, {"count", nullptr}};
    if (!body.is_discarded()) out["json"] = body;
    std::string field = ctx.string_param("count_field");
    for (const std::string& f :
         field.empty() ? std::vector<std::string>{"queued", "count", "enqueued"} : std::vector<std::string>{field})
      if (body.is_object() && body.contains(f)) {
        out["count"] = body[f];
        break;
      }
    ctx.log().info(req.method + " " + req.url + ": HTTP " + std::to_string(r.status) +
                   (out["count"].is_null() ? "" : ", queued " + interpolation_text(out["count"])));
    return out;
  }
};

}  // namespace

std::unique_ptr<StepType> make_queue_step() { return std::make_unique<QueueStep>(); }

}  // namespace flowrun
