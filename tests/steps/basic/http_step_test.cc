#include <catch2/catch.hpp>

#include "engine/io/http_client.h"
#include "support/harness.h"
#include "support/sim_server.h"

using namespace flowrun;
using flowrun::test::Harness;
using flowrun::test::SimServer;
using namespace std::chrono_literals;

namespace {
struct HttpHarness : Harness {
  CurlHttpClient curl;
  HttpHarness() { http = &curl; }
};
}  // namespace

TEST_CASE("http: method, headers, query and JSON body, the JSON response becomes outputs", "[steps][http]") {
  SimServer sim(Json::parse(R"J({"POST /api/items": [{"status": 201, "json": {"id": 42, "name": "x"}}]})J"));
  HttpHarness h;
  REQUIRE(h.load(R"(inputs: {url: ""}
steps:
  - id: create
    type: http
    with:
      url: "${{ inputs.url }}/api/items"
      headers: {x-api-key: abc}
      query: {limit: 10, tag: "a b"}
      json: {name: x}
  - {id: after, type: set, with: {id: "${{ steps.create.outputs.json.id }}"}}
)") == "");
  RunResult r = h.run({{"url", sim.url()}});
  REQUIRE(r.status == RunState::kSucceeded);
  CHECK(r.steps["create"]["outputs"]["status"] == 201);
  CHECK(r.steps["after"]["outputs"]["id"] == 42);
  auto reqs = sim.requests();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0]["method"] == "POST");
  CHECK(reqs[0]["query"] == "limit=10&tag=a%20b");
  CHECK(reqs[0]["headers"]["x-api-key"] == "abc");
  CHECK(reqs[0]["headers"]["Content-Type"] == "application/json");
  CHECK(Json::parse(reqs[0]["body"].get<std::string>()) == Json({{"name", "x"}}));
}

TEST_CASE("http: 429 with Retry-After and 503 are transient and retried, 404 is permanent", "[steps][http]") {
  SimServer sim(Json::parse(R"J({
    "/flaky": [{"status": 429, "headers": {"Retry-After": "1"}, "json": {"error": "rate"}},
               {"status": 503, "body": "unavailable"},
               {"status": 200, "json": {"ok": true}}],
    "/missing": [{"status": 404, "json": {"error": "nope"}}]})J"));
  HttpHarness h;
  REQUIRE(h.load(R"(inputs: {url: ""}
steps:
  - id: a
    type: http
    retry: {attempts: 5, on: [transient], backoff: {initial: 10ms}}
    with: {url: "${{ inputs.url }}/flaky"}
  - id: b
    type: http
    retry: {attempts: 5, on: [transient], backoff: {initial: 10ms}}
    with: {url: "${{ inputs.url }}/missing"}
)") == "");
  RunResult r = h.run({{"url", sim.url()}});
  CHECK(r.steps["a"]["status"] == "succeeded");
  CHECK(r.records[0].attempts == 3);
  CHECK(h.virtual_clock.sleeps() == std::vector<Duration>{1s, 20ms});  // Retry-After, then backoff
  CHECK(r.steps["b"]["status"] == "failed");
  CHECK(r.records[1].attempts == 1);
  // The error once, its reason reduced to the JSON message; no retry story when none was tried.
  CHECK(r.error == "GET " + sim.url() + "/missing returned HTTP 404: nope (permanent (http 404))");
}

TEST_CASE("http: expect accepts other statuses, network errors are transient", "[steps][http]") {
  SimServer sim(Json::parse(R"J({"/gone": [{"status": 404, "body": ""}]})J"));
  HttpHarness h;
  REQUIRE(h.load(R"(inputs: {url: ""}
steps:
  - {id: a, type: http, with: {url: "${{ inputs.url }}/gone", expect: [200, 404]}}
  - {id: b, type: http, with: {url: "http://127.0.0.1:1/closed", timeout: 2s}}
)") == "");
  RunResult r = h.run({{"url", sim.url()}});
  CHECK(r.steps["a"]["status"] == "succeeded");
  CHECK(r.steps["a"]["outputs"]["status"] == 404);
  CHECK(r.steps["b"]["status"] == "failed");
  CHECK(r.error.find("(transient)") != std::string::npos);
}

TEST_CASE("Retry-After: seconds, HTTP-date and milliseconds", "[http]") {
  HttpResponse r;
  r.headers["retry-after"] = "120";
  CHECK(parse_retry_after(r) == Duration(120s));
  r.headers["retry-after"] = "Wed, 21 Oct 2015 07:28:30 GMT";
  auto now = std::chrono::system_clock::from_time_t(1445412480);  // 07:28:00
  CHECK(parse_retry_after(r, now) == Duration(30s));
  r.headers["retry-after-ms"] = "1500";
  CHECK(parse_retry_after(r) == Duration(1500));
  CHECK_FALSE(parse_retry_after(HttpResponse{}).has_value());
}

TEST_CASE("Retry-After: a server's absurd number is ignored, not trusted", "[http]") {
  HttpResponse r;
  r.headers["retry-after"] = "99999999999999999999999";  // std::stoll would throw
  CHECK_FALSE(parse_retry_after(r).has_value());
  r.headers["retry-after-ms"] = "1e300";  // converting it would be undefined behaviour
  CHECK_FALSE(parse_retry_after(r).has_value());
}
