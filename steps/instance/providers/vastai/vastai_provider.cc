// The `vastai` provider: the Vast.ai REST API as the official client (vast-ai/vast-cli) speaks it.
// Shapes and sources: ../shared/API-SHAPES.md section 1. The key travels only in the
// Authorization header, never in a URL, so no log line can carry it.
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "engine/io/http_client.h"
#include "engine/io/http_reason.h"
#include "engine/io/retry.h"
#include "engine/io/step_error.h"
#include "engine/step_api/http_request.h"
#include "engine/step_api/step_context.h"
#include "steps/instance/providers/registry.h"

namespace flowrun {
namespace {

// Per API call, for 429, 5xx and lost requests; the step's own retry policy comes on top.
const RetryPolicy kIdempotentCall{
    .attempts = 4,
    .on = {RetryCondition::transient()},
    .backoff = {std::chrono::milliseconds(500), 2.0, std::chrono::hours(1), Jitter::kNone},
    .max_elapsed = {}};
// A call that is not idempotent (renting) may have happened despite a 5xx or a lost reply; a 429
// was not processed.
const RetryPolicy kOtherCall{
    .attempts = 4, .on = {RetryCondition::http(429, 429)}, .backoff = kIdempotentCall.backoff, .max_elapsed = {}};
// The log is uploaded to result_url a moment after it is requested; until then it answers 403
// or 404. Like the official client: 30 tries, 0.3 s apart; network trouble is not retried.
const RetryPolicy kLogUpload{
    .attempts = 30,
    .on = {RetryCondition::http(100, 999)},
    .backoff = {std::chrono::milliseconds(300), 1.0, std::chrono::milliseconds(300), Jitter::kNone},
    .max_elapsed = {}};

std::string id_string(const Json& v) {
  if (v.is_number_integer()) return std::to_string(v.get<long long>());
  if (v.is_number()) return std::to_string(static_cast<long long>(v.get<double>()));
  return v.is_string() ? v.get<std::string>() : "";
}

double number(const Json& v, double fallback = 0) {
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    try {
      return std::stod(v.get<std::string>());
    } catch (const std::exception&) {
    }
  }
  return fallback;
}

std::string text_of(const Json& v) { return v.is_string() ? v.get<std::string>() : ""; }

// The error message of a Vast reply: {"msg"}, {"error"}, {"detail"} or the text itself.
std::string reply_message(const HttpResponse& r) { return error_reason(r.body); }

InstanceState instance_from(const Json& row) {
  InstanceState s;
  s.id = id_string(row.value("id", Json()));
  // A null actual_status means it is still being provisioned.
  s.status = row.value("actual_status", Json()).is_string() ? row["actual_status"].get<std::string>() : "loading";
  s.message = text_of(row.value("status_msg", Json()));
  s.label = text_of(row.value("label", Json()));
  s.gpu_name = text_of(row.value("gpu_name", Json()));
  s.price_per_hour = number(row.value("dph_total", Json()));
  return s;
}

class VastaiProvider final : public InstanceProvider {
 public:
  VastaiProvider(std::string base, std::string key, Duration request_timeout)
      : base_(std::move(base)), key_(std::move(key)), request_timeout_(request_timeout) {
    while (!base_.empty() && base_.back() == '/') base_.pop_back();
  }

  std::string name() const override { return "vastai"; }

  std::vector<Offer> search_offers(const OfferFilter& f, StepContext& ctx) override {
    Json q = {{"verified", {{"eq", true}}},
              {"external", {{"eq", false}}},
              {"rentable", {{"eq", true}}},
              {"rented", {{"eq", false}}},
              {"num_gpus", {{"eq", f.num_gpus}}},
              {"disk_space", {{"gte", f.disk_gb}}},
              {"order", Json::array({Json::array({"dph_total", "asc"})})},
              {"type", "on-demand"},
              {"limit", 64},
              {"allocated_storage", f.disk_gb}};
    if (!f.gpu_name.empty()) q["gpu_name"] = {{"eq", f.gpu_name}};
    if (f.max_price) q["dph_total"] = {{"lte", *f.max_price}};
    if (f.min_reliability) q["reliability"] = {{"gte", *f.min_reliability}};
    const Json j = call_json(ctx, "POST", "/bundles/", q).json;
    if (!j.is_object() || !j.value("offers", Json()).is_array())
      throw StepError::transient("offer search returned no offers list");
    std::vector<Offer> offers;
    for (const Json& o : j["offers"]) {
      Offer offer{.id = id_string(o.value("id", Json())),
                  .gpu_name = text_of(o.value("gpu_name", Json())),
                  .num_gpus = static_cast<int>(number(o.value("num_gpus", Json()), 1)),
                  .price_per_hour = number(o.value("dph_total", Json())),
                  .reliability = number(o.value("reliability", o.value("reliability2", Json())), 0)};
      // The server filters, but a cap on spending is checked here too.
      if (offer.id.empty() || (f.max_price && offer.price_per_hour > *f.max_price)) continue;
      if (!f.gpu_name.empty() && offer.gpu_name != f.gpu_name) continue;
      if (f.min_reliability && offer.reliability < *f.min_reliability) continue;
      offers.push_back(offer);
    }
    std::stable_sort(offers.begin(), offers.end(),
                     [](const Offer& a, const Offer& b) { return a.price_per_hour < b.price_per_hour; });
    return offers;
  }

  CreateResult create(const Offer& offer, const InstanceSpec& spec, StepContext& ctx) override {
    Json env = Json::object();
    for (const auto& [k, v] : spec.env) env[k] = v;
    Json body = {{"client_id", "me"},
                 {"image", spec.image},
                 {"env", env},
                 {"price", nullptr},
                 {"disk", spec.disk_gb},
                 {"label", spec.label},
                 {"onstart", spec.start_command},
                 {"runtype", "ssh"},
                 {"cancel_unavail", true}};
    // Not retried on 5xx or a lost connection: the instance may exist all the same, and the
    // caller looks for it by label before renting again. A 429 was not processed: retried.
    auto [r, j] = call(ctx, "PUT", "/asks/" + offer.id + "/", body, Json(), {404, 410}, /*idempotent=*/false);
    if (r.status == 404 || r.status == 410 || (j.is_object() && j.value("error", Json()) == "no_such_ask"))
      return OfferGone{"offer " + offer.id + " is no longer available: " + reply_message(r)};
    // A 2xx that is not JSON is a reply lost on the way (a proxy, a dropped connection): the
    // instance may exist, so this is transient and the caller looks for it by label (found by
    // the fault suite: it used to fail the job for good).
    if (!j.is_object())
      throw StepError::transient("creating an instance on offer " + offer.id + ": the reply was not JSON (HTTP " +
                                 std::to_string(r.status) + ", " + std::to_string(r.body.size()) + " bytes)");
    if (!j.value("success", false) || !j.contains("new_contract"))
      throw StepError::permanent("creating an instance on offer " + offer.id + " failed: " + reply_message(r));
    return InstanceCreated{id_string(j["new_contract"])};
  }

  std::optional<InstanceState> get(const std::string& id, StepContext& ctx) override {
    const auto [r, j] = call_json(ctx, "GET", "/instances/" + id + "/", Json(), {{"owner", "me"}}, {404});
    if (r.status == 404) return std::nullopt;
    if (!j.is_object()) throw StepError::transient("instance " + id + ": the API returned no JSON");
    const auto row = j.find("instances");
    if (row == j.end() || !row->is_object()) return std::nullopt;  // {"instances": null}: unknown or destroyed
    return instance_from(*row);
  }

  std::vector<InstanceState> find_by_label(const std::string& label, StepContext& ctx) override {
    std::vector<InstanceState> found;
    Json filters = {{"label", {{"eq", label}}}};
    std::string token;
    for (int page = 0; page < 100; ++page) {
      Json query = {{"select_filters", filters.dump()}, {"limit", 25}};
      if (!token.empty()) query["after_token"] = token;
      const Json j = call_json(ctx, "GET", "/api/v1/instances/", Json(), query).json;
      if (!j.is_object()) throw StepError::transient("instance list: the API returned no JSON");
      const Json rows = j.value("instances", Json::array());
      for (const Json& row : rows)
        if (row.is_object() && text_of(row.value("label", Json())) == label) found.push_back(instance_from(row));
      token = text_of(j.value("next_token", Json()));
      if (token.empty()) break;
    }
    return found;
  }

  std::string logs(const std::string& id, int tail_lines, StepContext& ctx) override {
    const auto [r, j] = call_json(ctx, "PUT", "/instances/request_logs/" + id + "/",
                                  {{"tail", std::to_string(tail_lines)}}, Json(), {404});
    if (r.status == 404) throw StepError::permanent("instance " + id + " does not exist: " + reply_message(r));
    std::string url = j.is_object() ? text_of(j.value("result_url", Json())) : "";
    if (url.empty()) throw StepError::transient("instance " + id + " logs: " + reply_message(r));
    ctx.sleep(std::chrono::milliseconds(300));  // the upload has not happened yet
    int tries = 0;
    try {
      return retry(kLogUpload, ctx.clock(), ctx.cancel(), ctx.deadline(), [&](int attempt) {
        tries = attempt;
        HttpRequest get;  // no Authorization header: the URL is the permission
        get.url = url;
        get.timeout = ctx.bounded(request_timeout_);
        HttpResponse log = ctx.services().http.send(get, ctx.cancel());
        if (log.status != 200) throw StepError::http(log.status, "not uploaded yet");
        return log.body;
      });
    } catch (const StepError& e) {
      if (e.kind() == ErrorKind::kCancelled || e.http_status() == 0) throw;
      throw StepError::transient("instance " + id + " logs were not ready at result_url after " +
                                 std::to_string(tries) + " tries");
    }
  }

  bool destroy(const std::string& id, StepContext& ctx) override {
    const auto [r, j] = call_json(ctx, "DELETE", "/instances/" + id + "/", Json::object(), Json(), {404});
    if (r.status == 404) return false;
    if (j.is_object() && j.value("success", Json()) == false) {
      if (j.value("error", Json()) == "not_found" || j.value("error", Json()) == "no_such_instance") return false;
      throw StepError::transient("destroying instance " + id + " failed: " + reply_message(r));
    }
    return true;
  }

 private:
  // An answer and its body, parsed once (discarded when it is not JSON; null unless a 2xx).
  struct Reply {
    HttpResponse http;
    Json json;
  };

  // One API call. Retries 429 and 5xx (Vast sends no Retry-After: backoff decides) and network
  // failures a few times, then throws StepError::http; a call that is not idempotent is
  // retried on 429 only. Statuses in `accepted` are returned like 2xx; any other status throws.
  Reply call(StepContext& ctx, const std::string& method, const std::string& path, const Json& body,
             const Json& query = Json(), std::initializer_list<int> accepted = {}, bool idempotent = true) {
    return call_checked(ctx, method, path, body, query, accepted, idempotent, /*want_json=*/false);
  }

  // call() for replies that must be JSON: a 2xx whose body does not parse (cut off by a proxy or
  // a dropped connection) is retried like a 5xx when the call is idempotent.
  Reply call_json(StepContext& ctx, const std::string& method, const std::string& path, const Json& body,
                  const Json& query = Json(), std::initializer_list<int> accepted = {}) {
    return call_checked(ctx, method, path, body, query, accepted, /*idempotent=*/true, /*want_json=*/true);
  }

  Reply call_checked(StepContext& ctx, const std::string& method, const std::string& path, const Json& body,
                     const Json& query, std::initializer_list<int> accepted, bool idempotent, bool want_json) {
    std::string full = path.rfind("/api/v", 0) == 0 ? path : "/api/v0" + path;
    HttpRequest req;
    req.method = method;
    req.url = url_with_query(base_ + full, query.is_object() ? query : Json::object());
    req.headers = {{"Authorization", "Bearer " + key_}, {"Accept", "application/json"}, {"User-Agent", "flowrun"}};
    if (!body.is_null()) {
      req.body = body.dump();
      req.headers.emplace_back("Content-Type", "application/json");
    }
    auto once = [&](int) {
      req.timeout = ctx.bounded(request_timeout_);
      if (req.timeout <= Duration::zero()) throw StepError::timeout("no time left for " + method + " " + full);
      HttpResponse r;
      try {
        r = ctx.services().http.send(req, ctx.cancel());
      } catch (const StepError& e) {
        // A request that timed out was lost on the way, like a reset connection, and is tried
        // again the same way (the fault suite found a hung DELETE failing the cleanup for good).
        if (e.kind() == ErrorKind::kTimeout) throw StepError::transient(e.what());
        throw;
      }
      const bool success = r.status >= 200 && r.status < 300;
      bool ok = success || std::find(accepted.begin(), accepted.end(), r.status) != accepted.end();
      // Only a 2xx body is read: an accepted 404's is not (a hostile one could not throw).
      Json json = success ? parse_json_limited(r.body) : Json();
      if (success && want_json && json.is_discarded())
        throw StepError::transient("Vast.ai " + method + " " + full + ": the reply was not JSON (" +
                                   std::to_string(r.body.size()) + " bytes)");
      if (!ok)
        throw StepError::http(
            r.status,
            "Vast.ai " + method + " " + full + " returned HTTP " + std::to_string(r.status) + ": " + reply_message(r),
            parse_retry_after(r));
      return Reply{std::move(r), std::move(json)};
    };
    // Vast sends no Retry-After today; should it start to, it wins over the backoff.
    auto log_retry = [&](const FailedAttempt& f) {
      if (f.decision.retry)
        ctx.log().debug(std::string(f.error.what()) + "; retrying in " + format_duration(f.decision.delay));
    };
    // The step's own deadline bounds every try and every wait.
    return retry(idempotent ? kIdempotentCall : kOtherCall, ctx.clock(), ctx.cancel(), ctx.deadline(), once, log_retry);
  }

  std::string base_;
  std::string key_;
  Duration request_timeout_;
};

std::unique_ptr<InstanceProvider> make_vastai_provider(StepContext& ctx) {
  std::string key = ctx.string_param("api_key");
  if (key.empty())
    throw StepError::permanent(
        "provider vastai needs api_key (declare the secret VAST_API_KEY and pass "
        "api_key: ${{ secrets.VAST_API_KEY }})");
  // Like the official client: the api_url parameter, else $VAST_URL, else the console.
  std::string url = ctx.string_param("api_url");
  if (url.empty()) {
    const char* env = std::getenv("VAST_URL");
    url = env && *env ? env : "https://console.vast.ai";
  }
  const Duration request_timeout = ctx.duration_param("request_timeout").value_or(std::chrono::seconds(60));
  if (request_timeout <= Duration::zero()) throw StepError::permanent("request_timeout must be more than 0");
  return std::make_unique<VastaiProvider>(std::move(url), std::move(key), request_timeout);
}

}  // namespace

ProviderEntry vastai_provider() {
  return {
      .name = "vastai",
      .summary = "the Vast.ai REST API",
      .params = {{"api_key", ParamType::kString, false, "the provider's API key; pass a secret (vastai: VAST_API_KEY)"},
                 {"api_url", ParamType::kString, false,
                  "the API's base URL (vastai: $VAST_URL, else https://console.vast.ai)"},
                 {"request_timeout", ParamType::kDuration, false,
                  "how long one API request may take before it is retried as lost (vastai; default 60s)"}},
      .make = make_vastai_provider};
}

}  // namespace flowrun
