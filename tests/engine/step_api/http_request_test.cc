// send_expecting: the one place a response with an unexpected status becomes StepError::http.
#include "engine/step_api/http_request.h"

#include <catch2/catch.hpp>

#include "engine/io/step_error.h"
#include "support/step_error_of.h"

using namespace flowrun;
using namespace std::chrono_literals;

using flowrun::test::step_error_of;

namespace {

// Answers every request with `reply`; a streamed body is handed to on_body in two chunks.
struct ScriptedHttp final : HttpClient {
  HttpResponse reply;
  int sent = 0;
  HttpResponse send(const HttpRequest& request, const CancelToken&) override {
    ++sent;
    if (!request.on_body) return reply;
    HttpResponse r = reply;
    const std::string body = std::move(r.body);
    r.body.clear();
    const size_t half = body.size() / 2;
    if (request.on_body(r.status, std::string_view(body).substr(0, half)))
      request.on_body(r.status, std::string_view(body).substr(half));
    return r;
  }
};

HttpRequest get(const std::string& url) {
  HttpRequest r;
  r.url = url;
  return r;
}

}  // namespace

TEST_CASE("send_expecting: an expected status returns the response", "[step_api][http]") {
  ScriptedHttp http;
  CancelToken cancel;
  http.reply = {204, {}, ""};
  CHECK(send_expecting(http, get("http://x/a"), cancel).status == 204);
  http.reply = {404, {}, "none"};
  CHECK(send_expecting(http, get("http://x/a"), cancel, {.status = Json::array({200, 404})}).body == "none");
  CHECK(http.sent == 2);
}

TEST_CASE("send_expecting: another status is StepError::http naming the request, with the reason and Retry-After",
          "[step_api][http]") {
  ScriptedHttp http;
  CancelToken cancel;
  http.reply = {503, {{"retry-after", "7"}}, R"({"error": {"message": "overloaded"}})"};
  HttpRequest post = get("http://x/q");
  post.method = "POST";
  StepError e = step_error_of([&] { send_expecting(http, post, cancel); });
  CHECK(std::string(e.what()) == "POST http://x/q returned HTTP 503: overloaded");
  CHECK(e.http_status() == 503);
  CHECK(e.kind() == ErrorKind::kTransient);
  CHECK(e.retry_after() == std::optional<Duration>(7s));

  // A named request, and no reason.
  e = step_error_of(
      [&] { send_expecting(http, post, cancel, {.what = "probe POST http://x/q", .reason = ReasonInMessage::kNone}); });
  CHECK(std::string(e.what()) == "probe POST http://x/q returned HTTP 503");

  // 200 is not what `expect: 201` asks for; an empty body adds a reason only when kAlways.
  http.reply = {200, {}, ""};
  e = step_error_of([&] { send_expecting(http, get("http://x/a"), cancel, {.status = 201}); });
  CHECK(std::string(e.what()) == "GET http://x/a returned HTTP 200");
  CHECK(e.kind() == ErrorKind::kPermanent);
  e = step_error_of(
      [&] { send_expecting(http, get("http://x/a"), cancel, {.status = 201, .reason = ReasonInMessage::kAlways}); });
  CHECK(std::string(e.what()) == "GET http://x/a returned HTTP 200: ");
}

TEST_CASE("send_expecting: a streamed body reaches on_body only for an expected status", "[step_api][http]") {
  ScriptedHttp http;
  CancelToken cancel;
  std::string streamed;
  HttpRequest req = get("http://x/big");
  req.on_body = [&](int, std::string_view chunk) {
    streamed.append(chunk);
    return true;
  };
  http.reply = {200, {}, "line 1\nline 2\n"};
  send_expecting(http, req, cancel);
  CHECK(streamed == "line 1\nline 2\n");

  streamed.clear();
  http.reply = {500, {}, "<html><title>Internal trouble</title></html>"};
  StepError e = step_error_of([&] { send_expecting(http, req, cancel, {.reason = ReasonInMessage::kAlways}); });
  CHECK(streamed.empty());
  CHECK(std::string(e.what()) == "GET http://x/big returned HTTP 500: Internal trouble");
}

TEST_CASE("check_expected: the check alone, on a response already received", "[step_api][http]") {
  CHECK_NOTHROW(check_expected(get("http://x/a"), {206, {}, "x"}));
  StepError e = step_error_of([&] {
    check_expected(get("http://x/a"), {429, {}, "slow down"}, {.what = "GET http://x/a"});
  });
  CHECK(std::string(e.what()) == "GET http://x/a returned HTTP 429: slow down");
  CHECK(e.kind() == ErrorKind::kTransient);
}
