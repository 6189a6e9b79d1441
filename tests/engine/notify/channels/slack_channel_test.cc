// The slack channel: the text it builds from an event, the request it sends, and how Slack's
// answers become error kinds.
#include "engine/notify/channels/slack_channel.h"

#include <catch2/catch.hpp>

#include "engine/io/clock.h"
#include "engine/io/http_client.h"
#include "engine/io/process_runner.h"
#include "engine/io/step_error.h"
#include "support/step_error_of.h"

using namespace flowrun;
using namespace std::chrono_literals;

using flowrun::test::step_error_of;

namespace {

const std::string kUrl = "https://hooks.slack.com/services/T000/B000/SECRETSECRET";

// Records each request and answers with `reply`, or throws `failure` when set.
struct RecordingHttp final : HttpClient {
  HttpResponse reply{200, {}, "ok"};
  std::optional<StepError> failure;
  std::vector<HttpRequest> requests;
  HttpResponse send(const HttpRequest& request, const CancelToken&) override {
    requests.push_back(request);
    if (failure) throw *failure;
    return reply;
  }
};

struct Fixture {
  RecordingHttp http;
  SystemProcessRunner processes;
  VirtualClock clock;
  ChannelServices services{http, processes, clock};
  Json target{{"type", "slack"}, {"url", kUrl}};
};

}  // namespace

TEST_CASE("slack_text: a run's end names the workflow, the run and the counts", "[notify][slack]") {
  Json partial = {
      {"event", "partial"}, {"run", "r-123"}, {"workflow", "video_batch"}, {"data", {{"failed", 1}, {"total", 3}}}};
  CHECK(slack_text(partial) == ":warning: video_batch run r-123 partial: 1 of 3 items failed");
  Json failed = {{"event", "failed"}, {"run", "r-9"}, {"workflow", "w"}, {"error", "step a: exit 2"}};
  CHECK(slack_text(failed) == ":x: w run r-9 failed: step a: exit 2");
  CHECK(slack_text({{"event", "succeeded"}, {"run", "r-1"}, {"workflow", "w"}}) ==
        ":white_check_mark: w run r-1 succeeded");
}

TEST_CASE("slack_text: an item failure, a stall and a lost instance", "[notify][slack]") {
  Json item = {{"event", "item_failed"},
               {"run", "r-123"},
               {"workflow", "video_batch"},
               {"path", "videos[2]"},
               {"data", {{"item", "c.mp4"}, {"index", 2}, {"error", "exit 1: codec not found"}}}};
  CHECK(slack_text(item) == ":x: video_batch run r-123: item videos[2] (c.mp4) failed: exit 1: codec not found");
  Json stalled = {{"event", "stalled"},    {"run", "r-1"},           {"workflow", "w"},
                  {"path", "train/watch"}, {"message", "no output"}, {"data", {{"stalls", 3}}}};
  CHECK(slack_text(stalled) == ":warning: w run r-1: train/watch stalled (3 checks without progress): no output");
  Json lost = {{"event", "instance_lost"},
               {"run", "r-1"},
               {"path", "wait"},
               {"data", {{"instance", "vast-42"}, {"reason", "gone from the provider"}}}};
  CHECK(slack_text(lost) == ":warning: run r-1: instance vast-42 lost at wait: gone from the provider");
}

TEST_CASE("slack_text: the payloads engine/notify writes for a run's end and a digest", "[notify][slack]") {
  Json partial = {{"run", "r-123"},
                  {"workflow", "video_batch"},
                  {"event", "partial"},
                  {"path", ""},
                  {"message", "run r-123 of video_batch partial"},
                  {"error", "1 of 3 items failed"},
                  {"outputs", Json::object()},
                  {"link", "http://127.0.0.1:8080/runs/r-123"}};
  CHECK(slack_text(partial) ==
        ":warning: video_batch run r-123 partial: 1 of 3 items failed\n<http://127.0.0.1:8080/runs/r-123|live view>");
  auto item = [](const std::string& path, const std::string& kind) {
    return Json{{"run", "r-1"}, {"workflow", "w"}, {"event", kind}, {"path", path}, {"error", "x"}};
  };
  Json digest = {{"run", "r-1"},
                 {"workflow", "w"},
                 {"event", "digest"},
                 {"path", ""},
                 {"message", "3 item events"},
                 {"events", {item("v[0]", "item_failed"), item("v[1]", "item_failed"), item("v[2]", "item_failed")}}};
  CHECK(slack_text(digest) == ":x: w run r-1: 3 items failed: v[0], v[1], v[2]");
  digest["events"][1]["event"] = "item_succeeded";
  CHECK(slack_text(digest) ==
        ":information_source: w run r-1: 3 events: v[0] item_failed, v[1] item_succeeded, v[2] item_failed");
}

TEST_CASE("slack_text: a digest names its items, escapes markup and links the live view", "[notify][slack]") {
  Json digest = {{"event", "item_failed"},
                 {"run", "r-1"},
                 {"workflow", "w"},
                 {"link", "http://127.0.0.1:8080/runs/r-1"},
                 {"events", Json::array({Json{{"path", "v[0]"}}, Json{{"path", "v[1]"}}, Json{{"path", "v<2>&"}}})}};
  CHECK(slack_text(digest) ==
        ":x: w run r-1: 3 items failed: v[0], v[1], v&lt;2&gt;&amp;\n<http://127.0.0.1:8080/runs/r-1|live view>");
}

TEST_CASE("slack_text: stays within Slack's limit and on a character boundary", "[notify][slack]") {
  Json events = Json::array();
  for (int i = 0; i < 500; ++i) events.push_back({{"path", std::string(70, '<')}});
  Json big = {{"event", "item_failed"}, {"run", "r"}, {"events", events}, {"error", std::string(5000, 'x')}};
  std::string text = slack_text(big);
  CHECK(text.size() <= kSlackMaxText);
  CHECK(text.find("&lt;") != std::string::npos);
  CHECK(text.substr(text.size() - 3) == "\xE2\x80\xA6");
  Json wide = {{"event", "failed"}, {"run", "r"}, {"error", std::string(1000, 'x') + "\xC3\xA9"}};
  for (int i = 0; i < 4; ++i) wide["error"] = wide["error"].get<std::string>() + wide["error"].get<std::string>();
  text = slack_text(wide);
  CHECK(text.size() <= kSlackMaxText);
  CHECK(Json(text).dump().find("\\ufffd") == std::string::npos);  // no character cut in two
}

TEST_CASE("slack channel: POSTs the text as JSON to the webhook url", "[notify][slack]") {
  Fixture f;
  slack_channel().deliver(f.target, {{"event", "failed"}, {"run", "r-1"}, {"workflow", "w"}}, f.services);
  REQUIRE(f.http.requests.size() == 1);
  const HttpRequest& r = f.http.requests[0];
  CHECK(r.method == "POST");
  CHECK(r.url == kUrl);
  CHECK(r.headers ==
        std::vector<std::pair<std::string, std::string>>{{"Content-Type", "application/json; charset=utf-8"}});
  CHECK(Json::parse(r.body) == Json{{"text", ":x: w run r-1 failed"}});
}

TEST_CASE("slack channel: 429 and 5xx are transient, other 4xx permanent, and the url never shows", "[notify][slack]") {
  Fixture f;
  const Json event = {{"event", "failed"}, {"run", "r-1"}};
  f.http.reply = {429, {{"retry-after", "7"}}, "rate_limited"};
  StepError e = step_error_of([&] { slack_channel().deliver(f.target, event, f.services); });
  CHECK(e.kind() == ErrorKind::kTransient);
  CHECK(e.http_status() == 429);
  CHECK(e.retry_after() == std::optional<Duration>(7s));
  CHECK(std::string(e.what()) == "slack: the webhook answered 429: rate_limited");

  f.http.reply = {503, {}, "<html><title>Service Unavailable</title></html>"};
  e = step_error_of([&] { slack_channel().deliver(f.target, event, f.services); });
  CHECK(e.kind() == ErrorKind::kTransient);
  CHECK(std::string(e.what()) == "slack: the webhook answered 503: Service Unavailable");

  for (int status : {400, 403, 404, 410}) {
    f.http.reply = {status, {}, "no_service"};
    e = step_error_of([&] { slack_channel().deliver(f.target, event, f.services); });
    CHECK(e.kind() == ErrorKind::kPermanent);
    CHECK(e.http_status() == status);
  }

  f.http.failure = StepError::transient("POST " + kUrl + ": Could not resolve host: hooks.slack.com");
  e = step_error_of([&] { slack_channel().deliver(f.target, event, f.services); });
  CHECK(e.kind() == ErrorKind::kTransient);
  CHECK(std::string(e.what()) == "slack: POST <slack url>: Could not resolve host: hooks.slack.com");
}

TEST_CASE("slack channel: check names a missing or empty url", "[notify][slack]") {
  CHECK(slack_channel().check({{"url", "${{ inputs.slack_webhook }}"}}).empty());
  CHECK(slack_channel().check(Json::object()) ==
        std::vector<std::string>{"url: a slack channel needs the incoming webhook's url"});
  CHECK(slack_channel().check({{"url", ""}}) == std::vector<std::string>{"url: must be a non-empty string"});
  Fixture f;
  StepError e = step_error_of([&] { slack_channel().deliver(Json::object(), {{"event", "failed"}}, f.services); });
  CHECK(e.kind() == ErrorKind::kPermanent);
  CHECK(f.http.requests.empty());
}
