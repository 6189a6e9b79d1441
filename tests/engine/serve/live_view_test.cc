// The live view's routes with a fake source: no network, no journal.
#include "engine/serve/live_view.h"

#include <catch2/catch.hpp>

using namespace flowrun;

namespace {

class FakeSource : public ViewSource {
 public:
  Json overview() override { return {{"runs", Json::array({{{"id", "r1"}, {"status", "running"}}})}}; }
  Json run(const std::string& run_id) override {
    if (run_id != "r1") return nullptr;
    return {{"run", {{"id", "r1"}, {"status", "running"}}}};
  }
  Json log(const std::string& run_id, const std::string& path) override {
    return Json::array({run_id + ":" + path, "<script>x</script>"});
  }
  CancelAnswer cancel(const std::string& run_id) override {
    cancelled.push_back(run_id);
    return run_id == "r1" ? CancelAnswer::kRequested : CancelAnswer::kNotFound;
  }
  std::optional<std::string> metrics() override { return metrics_text; }

  std::vector<std::string> cancelled;
  std::optional<std::string> metrics_text;
};

ServeRequest request(const std::string& method, const std::string& target,
                     std::map<std::string, std::string> headers = {}) {
  ServeRequest r;
  r.method = method;
  r.target = target;
  r.headers = std::move(headers);
  if (!r.headers.count("host")) r.headers["host"] = "127.0.0.1:8080";
  return r;
}

std::string header(const ServeResponse& r, const std::string& name) {
  for (const auto& [n, v] : r.headers)
    if (n == name) return v;
  return {};
}

LiveViewOptions on_port(unsigned short port, std::string token = {}) {
  LiveViewOptions o;
  o.port = port;
  o.token = std::move(token);
  return o;
}

}  // namespace

TEST_CASE("live view routes answer the page and the JSON API", "[serve]") {
  FakeSource source;
  LiveView view(source, on_port(8080));
  auto page = view.handle(request("GET", "/"));
  CHECK(page.status == 200);
  CHECK(page.content_type == "text/html; charset=utf-8");
  CHECK(page.body.find("<meta name=\"flowrun-csrf\" content=\"" + view.csrf() + "\">") != std::string::npos);
  const std::string csp = header(page, "Content-Security-Policy");
  REQUIRE(csp.find("script-src 'nonce-") != std::string::npos);
  const std::string nonce = csp.substr(csp.find("'nonce-") + 7, 32);
  CHECK(page.body.find("<script nonce=\"" + nonce + "\">") != std::string::npos);
  CHECK(csp.find("default-src 'self'") != std::string::npos);
  CHECK(csp.find("unsafe-inline") == std::string::npos);
  CHECK(header(page, "X-Content-Type-Options") == "nosniff");
  CHECK(header(page, "Access-Control-Allow-Origin").empty());
  CHECK(page.body.find("innerHTML") == std::string::npos);  // data goes through textContent only
  CHECK(view.handle(request("GET", "/runs/r1")).status == 200);

  CHECK(Json::parse(view.handle(request("GET", "/api/runs")).body)["runs"][0]["id"] == "r1");
  CHECK(Json::parse(view.handle(request("GET", "/api/runs/r1")).body)["run"]["status"] == "running");
  CHECK(view.handle(request("GET", "/api/runs/nope")).status == 404);
  CHECK(view.handle(request("GET", "/api/runs/..%2Fx")).status == 404);
  auto log = Json::parse(view.handle(request("GET", "/api/runs/r1/log?path=videos%5B0%5D")).body);
  CHECK(log["path"] == "videos[0]");
  CHECK(log["lines"][0] == "r1:videos[0]");
  CHECK(view.handle(request("GET", "/api/runs/r1/log")).status == 400);
  CHECK(view.handle(request("GET", "/nothing")).status == 404);
  CHECK(view.handle(request("POST", "/api/runs")).status == 405);
  CHECK(view.handle(request("GET", "/api/runs/r1/cancel")).status == 405);
}

TEST_CASE("live view metrics answer 501 until a source has them", "[serve]") {
  FakeSource source;
  LiveView view(source, on_port(8080));
  CHECK(view.handle(request("GET", "/metrics")).status == 501);
  source.metrics_text = "flowrun_runs_total 3\n";
  auto r = view.handle(request("GET", "/metrics"));
  CHECK(r.status == 200);
  CHECK(r.body == "flowrun_runs_total 3\n");
  CHECK(r.content_type.rfind("text/plain; version=0.0.4", 0) == 0);
}

TEST_CASE("live view cancel needs the CSRF header and a same-origin browser", "[serve]") {
  FakeSource source;
  LiveView view(source, on_port(8080));
  // What a cross-site form POST looks like: no custom header, another Origin.
  auto form = view.handle(request("POST", "/api/runs/r1/cancel",
                                  {{"origin", "https://evil.example"},
                                   {"sec-fetch-site", "cross-site"},
                                   {"content-type", "application/x-www-form-urlencoded"}}));
  CHECK(form.status == 403);
  CHECK(view.handle(request("POST", "/api/runs/r1/cancel", {{"x-flowrun-csrf", "0000"}})).status == 403);
  CHECK(view.handle(request("POST", "/api/runs/r1/cancel",
                            {{"x-flowrun-csrf", view.csrf()}, {"origin", "https://evil.example"}}))
            .status == 403);
  CHECK(view.handle(request("POST", "/api/runs/r1/cancel",
                            {{"x-flowrun-csrf", view.csrf()}, {"sec-fetch-site", "cross-site"}}))
            .status == 403);
  CHECK(source.cancelled.empty());

  auto ok = view.handle(request(
      "POST", "/api/runs/r1/cancel",
      {{"x-flowrun-csrf", view.csrf()}, {"origin", "http://127.0.0.1:8080"}, {"sec-fetch-site", "same-origin"}}));
  CHECK(ok.status == 202);
  CHECK(Json::parse(ok.body)["cancel"] == "requested");
  CHECK(view.handle(request("POST", "/api/runs/other/cancel", {{"x-flowrun-csrf", view.csrf()}})).status == 404);
  CHECK(source.cancelled == std::vector<std::string>{"r1", "other"});
  // Another server, another value.
  FakeSource other_source;
  CHECK(LiveView(other_source, on_port(8080)).csrf() != view.csrf());
}

TEST_CASE("live view without a token answers only to this machine's names", "[serve]") {
  FakeSource source;
  LiveView view(source, on_port(8080));
  CHECK(view.handle(request("GET", "/api/runs", {{"host", "localhost:8080"}})).status == 200);
  CHECK(view.handle(request("GET", "/api/runs", {{"host", "[::1]:8080"}})).status == 200);
  // A name rebound to 127.0.0.1 by a hostile page.
  CHECK(view.handle(request("GET", "/api/runs", {{"host", "evil.example:8080"}})).status == 403);
  CHECK(view.handle(request("GET", "/api/runs", {{"host", "127.0.0.1:9999"}})).status == 403);
}

TEST_CASE("live view with a token: header, cookie from ?token, constant-time compare", "[serve]") {
  FakeSource source;
  LiveView view(source, on_port(8080, "s3cret-token"));
  const std::map<std::string, std::string> lan{{"host", "192.168.1.5:8080"}};
  auto none = view.handle(request("GET", "/api/runs", lan));
  CHECK(none.status == 401);
  CHECK(none.body.find("s3cret") == std::string::npos);
  CHECK(view.handle(request("GET", "/", lan)).status == 401);
  CHECK(view.handle(request("GET", "/api/runs", {{"host", "x:1"}, {"authorization", "Bearer s3cret-token"}})).status ==
        200);
  CHECK(view.handle(request("GET", "/api/runs", {{"authorization", "Bearer s3cret-tokem"}})).status == 401);
  CHECK(view.handle(request("GET", "/api/runs", {{"authorization", "Bearer s3cret-token-longer"}})).status == 401);
  CHECK(view.handle(request("GET", "/api/runs", {{"cookie", "a=b; flowrun_token=s3cret-token"}})).status == 200);
  CHECK(view.handle(request("GET", "/api/runs", {{"cookie", "flowrun_token=wrong"}})).status == 401);

  auto visit = view.handle(request("GET", "/runs/r1?token=s3cret-token", lan));
  CHECK(visit.status == 303);
  CHECK(header(visit, "Location") == "/runs/r1");  // the token leaves the address bar
  CHECK(header(visit, "Set-Cookie") == "flowrun_token=s3cret-token; Path=/; HttpOnly; SameSite=Strict");
  CHECK(view.handle(request("GET", "/?token=nope", lan)).status == 401);

  // The token does not replace the CSRF header for a cancel.
  CHECK(view.handle(request("POST", "/api/runs/r1/cancel", {{"authorization", "Bearer s3cret-token"}})).status == 403);
  CHECK(view.handle(request("POST", "/api/runs/r1/cancel", {{"x-flowrun-csrf", view.csrf()}})).status == 401);
  CHECK(view.handle(request("POST", "/api/runs/r1/cancel",
                            {{"authorization", "Bearer s3cret-token"}, {"x-flowrun-csrf", view.csrf()}}))
            .status == 202);
}

TEST_CASE("constant_time_equal and valid_token", "[serve]") {
  CHECK(constant_time_equal("abc", "abc"));
  CHECK_FALSE(constant_time_equal("abc", "abd"));
  CHECK_FALSE(constant_time_equal("abc", "abcd"));
  CHECK_FALSE(constant_time_equal("", "a"));
  CHECK(constant_time_equal("", ""));
  CHECK(valid_token("Abc-1._~+/="));
  CHECK_FALSE(valid_token("has space"));
  CHECK_FALSE(valid_token("semi;colon"));
  CHECK_FALSE(valid_token(""));
  CHECK(random_hex(16).size() == 32);
}
