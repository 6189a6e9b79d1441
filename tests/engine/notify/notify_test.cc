// Notifications in virtual time: routing and delivery keys, at_most, digest windows, backoff,
// giving up, and the webhook's request.
#include <catch2/catch.hpp>

#include "engine/io/clock.h"
#include "engine/io/http_client.h"
#include "engine/io/process_runner.h"
#include "engine/io/step_error.h"
#include "engine/notify/deliverer.h"
#include "engine/notify/notifier.h"
#include "engine/notify/outbox.h"
#include "support/sim_server.h"

using namespace flowrun;
using flowrun::test::TempDir;

namespace {

// Answers each POST with the next scripted status (200 when the script is used up).
class ScriptedHttp final : public HttpClient {
 public:
  std::vector<int> statuses;
  std::vector<HttpRequest> requests;
  HttpResponse send(const HttpRequest& r, const CancelToken&) override {
    requests.push_back(r);
    HttpResponse response;
    response.status = requests.size() <= statuses.size() ? statuses[requests.size() - 1] : 200;
    if (response.status == 0) throw StepError::transient("connection refused to " + r.url);
    return response;
  }
};

NotifySpec spec_with(std::vector<NotifyRoute> routes, Duration digest = Duration::zero()) {
  NotifySpec spec;
  spec.channels.push_back({"team", "webhook", {{"url", "${{ inputs.hook }}"}}, {}});
  spec.routes = std::move(routes);
  spec.digest = digest;
  return spec;
}

NotifyRoute route(std::vector<std::string> events, std::optional<NotifyRateLimit> at_most = std::nullopt) {
  return {std::move(events), {"team"}, at_most, {}};
}

struct Fixture {
  TempDir dir;
  int64_t now = 1'700'000'000'000;
  std::unique_ptr<Outbox> outbox;
  ScriptedHttp http;
  VirtualClock clock;
  FixedRandom random{1.0};  // the longest backoff of each step
  std::vector<std::string> warnings;

  Fixture() {
    SqliteDb(dir.file("journal.db"), true);
    outbox = std::make_unique<Outbox>(dir.file("journal.db"));
  }
  Notifier notifier(const NotifySpec& spec, const std::string& run = "r1") {
    return Notifier(
        spec, {{"team", Json{{"type", "webhook"}, {"url", "http://127.0.0.1:9/secret-hook"}}}}, *outbox, run, "wf",
        [](const Json& p) { return p; }, [this] { return now; });
  }
  Deliverer deliverer() {
    static NoProcesses processes;
    return Deliverer(
        *outbox, ChannelServices{http, processes, clock}, random,
        [this](const std::string& m) { warnings.push_back(m); }, [this] { return now; });
  }
  std::vector<std::string> keys() {
    std::vector<std::string> out;
    for (const auto& r : outbox->list(100)) out.insert(out.begin(), r.delivery_key + " " + r.status);
    return out;
  }
  struct NoProcesses final : ProcessRunner {
    ProcessResult run(const ProcessSpec&, const CancelToken&) override { throw std::logic_error("no processes"); }
  };
};

}  // namespace

TEST_CASE("routed events are enqueued once per run, event and channel", "[notify]") {
  Fixture f;
  auto spec = spec_with({route({"item_failed", "failed", "stalled"})});
  auto n = f.notifier(spec);
  n.notify("videos[1]", "item_failed", "item 1 failed", {{"item", "a.mp4"}, {"index", 1}, {"error", "boom"}});
  n.notify("videos[1]", "item_failed", "again (a resumed run)", {{"error", "boom"}});
  n.notify("videos[0]", "item_succeeded", "not routed", Json());
  n.notify("", "failed", "run r1 failed", Json());
  n.notify("watch", "stalled", "one", Json());
  n.notify("watch", "stalled", "two: happens anew, numbered", Json());
  CHECK(f.keys() == std::vector<std::string>{"r1/videos[1]/item_failed/team pending", "r1/failed/team pending",
                                             "r1/watch/stalled/team pending", "r1/watch/stalled#2/team pending"});
  const auto row = f.outbox->list(100).back();
  CHECK(row.payload["event"] == "item_failed");
  CHECK(row.payload["error"] == "boom");
  CHECK(row.payload["data"]["item"] == "a.mp4");
  CHECK(row.payload["at"] == "2023-11-14T22:13:20.000Z");
  CHECK(row.target["url"] == "http://127.0.0.1:9/secret-hook");
  CHECK(n.routes("item_failed"));
  CHECK(!n.routes("item_succeeded"));
}

TEST_CASE("at_most suppresses events of a kind beyond the limit within the period", "[notify]") {
  Fixture f;
  auto spec = spec_with({route({"stalled"}, NotifyRateLimit{1, std::chrono::minutes(10)})});
  auto n = f.notifier(spec);
  n.notify("watch", "stalled", "first", Json());
  f.now += 60'000;
  n.notify("watch", "stalled", "within ten minutes", Json());
  f.now += 10 * 60'000;
  n.notify("watch", "stalled", "after ten minutes", Json());
  CHECK(f.keys() == std::vector<std::string>{"r1/watch/stalled/team pending", "r1/watch/stalled#2/team suppressed",
                                             "r1/watch/stalled#3/team pending"});
}

TEST_CASE("item events of a digest window go out as one message, a single one as itself", "[notify]") {
  Fixture f;
  auto spec = spec_with({route({"item_failed", "failed"})}, std::chrono::minutes(1));
  auto n = f.notifier(spec);
  auto d = f.deliverer();
  n.notify("v[0]", "item_failed", "0", {{"error", "a"}});
  f.now += 10'000;
  n.notify("v[1]", "item_failed", "1", {{"error", "b"}});
  CHECK(d.deliver_due() == 0);  // the window is open
  CHECK(f.http.requests.empty());
  f.now += 50'000;
  CHECK(d.deliver_due() == 2);
  REQUIRE(f.http.requests.size() == 1);
  Json digest = Json::parse(f.http.requests[0].body);
  CHECK(digest["event"] == "digest");
  CHECK(digest["events"].size() == 2);
  CHECK(digest["events"][1]["error"] == "b");
  CHECK(f.keys() == std::vector<std::string>{"r1/v[0]/item_failed/team digested", "r1/v[1]/item_failed/team digested"});

  // A new window; the run's end makes it due at once, and alone it is sent as itself.
  f.now += 1000;
  n.notify("v[2]", "item_failed", "2", {{"error", "c"}});
  n.flush();
  CHECK(d.deliver_due() == 1);
  REQUIRE(f.http.requests.size() == 2);
  CHECK(Json::parse(f.http.requests[1].body)["event"] == "item_failed");
}

TEST_CASE("a failing delivery is tried again with backoff, then given up after the last attempt", "[notify]") {
  Fixture f;
  f.http.statuses = {500, 0, 503};
  auto spec = spec_with({route({"failed"})});
  auto n = f.notifier(spec);
  auto d = f.deliverer();
  n.notify("", "failed", "run failed", Json());
  CHECK(d.deliver_due() == 0);
  auto row = f.outbox->list(1)[0];
  CHECK(row.attempts == 1);
  CHECK(row.next_ms == f.now + 1000);  // backoff_delay(1s, attempt 1), the longest jitter
  CHECK(row.last_error == "webhook: HTTP 500");
  CHECK(d.deliver_due() == 0);  // not due yet
  f.now += 1000;
  d.deliver_due();
  row = f.outbox->list(1)[0];
  CHECK(row.attempts == 2);
  CHECK(row.next_ms == f.now + 2000);
  // The network error names no URL: curl's message is not passed on.
  CHECK(row.last_error == "webhook: network error (transient)");
  f.now += 2000;
  d.deliver_due();
  f.now += 4000;
  CHECK(d.deliver_due() == 1);
  row = f.outbox->list(1)[0];
  CHECK(row.status == "sent");
  CHECK(row.attempts == 3);
  REQUIRE(f.http.requests.size() == 4);
  const auto& r = f.http.requests.back();
  CHECK(r.method == "POST");
  CHECK(r.url == "http://127.0.0.1:9/secret-hook");
  CHECK(std::find(r.headers.begin(), r.headers.end(),
                  std::pair<std::string, std::string>{"Idempotency-Key", "r1/failed/team"}) != r.headers.end());
  CHECK(f.warnings.empty());

  SECTION("a permanent error is given up at once, logged once without the target") {
    f.http.statuses.assign(10, 404);
    f.http.requests.clear();
    f.notifier(spec, "r2").notify("", "failed", "x", Json());
    CHECK(d.deliver_due() == 1);
    CHECK(f.outbox->list(1)[0].status == "failed");
    REQUIRE(f.warnings.size() == 1);
    CHECK(f.warnings[0].find("secret-hook") == std::string::npos);
    CHECK(f.warnings[0].find("HTTP 404") != std::string::npos);
  }
  SECTION("transient errors are given up after ten attempts") {
    f.http.statuses.assign(20, 500);
    f.http.requests.clear();
    f.notifier(spec, "r2").notify("", "failed", "x", Json());
    for (int i = 0; i < 12; ++i) {
      d.deliver_due();
      f.now += 10 * 60'000;
    }
    CHECK(f.http.requests.size() == Deliverer::kMaxAttempts);
    CHECK(f.outbox->list(1)[0].status == "failed");
    CHECK(f.warnings.size() == 1);
  }
}

TEST_CASE("a row another process took is left alone until its lease ends", "[notify]") {
  Fixture f;
  auto spec = spec_with({route({"failed"})});
  auto n = f.notifier(spec);
  n.notify("", "failed", "run failed", Json());
  auto row = f.outbox->due(f.now)[0];
  REQUIRE(f.outbox->claim(row.id, row.next_ms, f.now + Deliverer::kLeaseMs));
  CHECK(!f.outbox->claim(row.id, row.next_ms, f.now + Deliverer::kLeaseMs));
  auto d = f.deliverer();
  CHECK(d.deliver_due() == 0);
  CHECK(f.http.requests.empty());
}

TEST_CASE("a channel whose url resolves to empty is off, and its target's secrets are named", "[notify]") {
  NotifyChannel channel{"team", "webhook", {{"url", "${{ inputs.hook }}"}}, {}};
  CHECK(resolve_channel_target(channel, {{"inputs", {{"hook", ""}}}}).is_null());
  Json on = resolve_channel_target(channel, {{"inputs", {{"hook", "https://h.example/abc"}}}});
  CHECK(on == Json{{"type", "webhook"}, {"url", "https://h.example/abc"}});
  CHECK(target_secrets(on) == std::vector<std::string>{"https://h.example/abc"});
  CHECK(target_secrets({{"type", "exec"}, {"argv", {"notify-send", "token-123"}}}) ==
        std::vector<std::string>{"token-123"});
}

TEST_CASE("a resumed run keeps the target its first process stored", "[notify]") {
  Fixture f;
  CHECK(f.outbox->remember_target("r1", "team", {{"url", "https://real"}}) == Json{{"url", "https://real"}});
  CHECK(f.outbox->remember_target("r1", "team", {{"url", "***"}}) == Json{{"url", "https://real"}});
  CHECK(f.outbox->targets_of("r1").size() == 1);
}

TEST_CASE("the finished rows and targets of pruned runs are forgotten, pending ones stay", "[notify]") {
  Fixture f;
  SqliteDb(f.dir.file("journal.db"), false)
      .exec("CREATE TABLE runs (id TEXT PRIMARY KEY); INSERT INTO runs VALUES ('kept')");
  auto row = [](const std::string& run, const std::string& status) {
    OutboxRow r;
    r.delivery_key = run + "/partial/team/" + status;
    r.run_id = run;
    r.channel = "team";
    r.event = "partial";
    r.payload = Json::object();
    r.target = Json{{"url", "https://hook"}};
    r.status = status;
    return r;
  };
  for (const auto& r : {row("kept", "sent"), row("gone", "sent"), row("gone", "suppressed"), row("late", "pending"),
                        row("late", "failed")})
    REQUIRE(f.outbox->enqueue(r));
  f.outbox->remember_target("gone", "team", {{"url", "https://a"}});
  f.outbox->remember_target("late", "team", {{"url", "https://b"}});
  CHECK(f.outbox->forget_pruned_runs() == 3);
  CHECK(f.keys() == std::vector<std::string>{"kept/partial/team/sent sent", "late/partial/team/pending pending"});
  CHECK(f.outbox->targets_of("gone").empty());
  CHECK(f.outbox->targets_of("late").size() == 1);  // still needed to deliver its pending row
}
