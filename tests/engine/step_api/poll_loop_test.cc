#include "engine/step_api/poll_loop.h"

#include <catch2/catch.hpp>
#include <deque>

#include "engine/io/step_error.h"
#include "engine/model/workflow.h"
#include "support/harness.h"

using namespace flowrun;
using namespace std::chrono_literals;

namespace {

// Replays scripted observations: 'd' done, 'p' pending, 'f' failed, 'e' transient probe error.
class ScriptedPoller final : public Poller {
 public:
  explicit ScriptedPoller(std::string script) : script_(std::move(script)) {}
  PollResult poll(StepContext&) override {
    char c = i_ < script_.size() ? script_[i_] : script_.back();
    ++i_;
    PollResult r;
    r.outputs = {{"poll", i_}};
    switch (c) {
      case 'd':
        r.status = PollStatus::kDone;
        break;
      case 'f':
        r.status = PollStatus::kFailed;
        r.message = "job crashed";
        break;
      case 'e':
        throw StepError::transient("connection refused");
      default:
        r.status = PollStatus::kPending;
    }
    return r;
  }
  size_t polls() const { return i_; }

 private:
  std::string script_;
  size_t i_ = 0;
};

struct Fixture {
  test::Harness h;
  Step step;
  Json with = Json::object();
  CancelToken cancel;
  Services services{h.no_http, h.processes, h.virtual_clock, h.redactor, "."};
  StepContext ctx{step, with, "p", 1, services, cancel, std::nullopt, h.logs->logger("p")};
};

}  // namespace

TEST_CASE("threshold: done must hold for N consecutive checks", "[poll]") {
  Fixture f;
  ScriptedPoller poller("dpddpddd");
  PollSettings s;
  s.interval = 10s;
  s.threshold = 3;
  Json out = run_poll_loop(poller, f.ctx, s);
  CHECK(out["poll"] == 8);  // the first run of three "d" ends at the 8th check
  CHECK(f.h.virtual_clock.sleeps().size() == 7);
}

TEST_CASE("probe errors back off and polling goes on", "[poll]") {
  Fixture f;
  ScriptedPoller poller("peeeepd");
  PollSettings s;
  s.interval = 10s;
  Json out = run_poll_loop(poller, f.ctx, s);
  CHECK(out["poll"] == 7);
  CHECK(f.h.virtual_clock.sleeps() == std::vector<Duration>{10s, 10s, 20s, 40s, 80s, 10s});
  CHECK(f.h.log_contains("WARN [p] probe failed (4 in a row, transient): connection refused; next check in 1m20s"));
  CHECK(f.h.log_contains("INFO [p] probe recovered after 4 failed checks"));
}

TEST_CASE("probe back-off is capped at 16 intervals and 10 minutes", "[poll]") {
  CHECK(probe_backoff(10s, 1) == 10s);
  CHECK(probe_backoff(10s, 5) == 160s);
  CHECK(probe_backoff(10s, 9) == 160s);
  CHECK(probe_backoff(60s, 9) == Duration(10min));
  CHECK(probe_backoff(1h, 3) == Duration(1h));  // never below one interval
}

TEST_CASE("a 2-hour timeout passes in virtual time", "[poll]") {
  Fixture f;
  ScriptedPoller poller("p");
  PollSettings s;
  s.interval = 30s;
  s.timeout = Duration(2h);
  s.heartbeat = Duration(30min);
  try {
    run_poll_loop(poller, f.ctx, s);
    FAIL("expected a timeout");
  } catch (const StepError& e) {
    CHECK(e.kind() == ErrorKind::kTimeout);
    CHECK(std::string(e.what()) == "no result after 2h of polling (240 checks)");
  }
  CHECK(poller.polls() == 240);
  CHECK(f.h.log_contains("INFO [p] still waiting: 30m elapsed, 61 checks, 1h30m left"));
}

TEST_CASE("a failed observation ends the loop with its message", "[poll]") {
  Fixture f;
  ScriptedPoller poller("ppf");
  try {
    run_poll_loop(poller, f.ctx, PollSettings{});
    FAIL("expected failure");
  } catch (const StepError& e) {
    CHECK(e.kind() == ErrorKind::kPermanent);
    CHECK(std::string(e.what()) == "job crashed");
  }
}

TEST_CASE("poll settings come from the parameters", "[poll]") {
  StepInfo info;
  info.default_interval = 5s;
  info.default_timeout = Duration(2h);
  auto s = poll_settings(info, {{"interval", "50ms"}, {"threshold", 3}});
  CHECK(s.interval == Duration(50));
  CHECK(s.threshold == 3);
  CHECK(s.timeout == Duration(2h));
  CHECK_THROWS_AS(poll_settings(info, {{"interval", "soon"}}), StepError);
  CHECK_THROWS_AS(poll_settings(info, {{"threshold", 0}}), StepError);
}
