// The exec channel with real processes: the event on stdin, exit codes, time-outs, stderr.
#include "engine/notify/channels/exec_channel.h"

#include <catch2/catch.hpp>

#include "engine/io/clock.h"
#include "engine/io/process_runner.h"
#include "engine/io/step_error.h"
#include "support/harness.h"
#include "support/sim_server.h"
#include "support/step_error_of.h"

using namespace flowrun;

using flowrun::test::step_error_of;

namespace {

struct Fixture {
  test::NoHttp http;
  SystemProcessRunner processes;
  VirtualClock clock;
  ChannelServices services{http, processes, clock};
  test::TempDir dir;
};

}  // namespace

TEST_CASE("exec channel: the event's JSON arrives on stdin and exit 0 is delivered", "[notify][exec]") {
  Fixture f;
  const Json event = {{"event", "item_failed"}, {"run", "r-7"}, {"path", "videos[2]"}, {"error", "a; $(rm -rf /)"}};
  const Json target = {
      {"type", "exec"},
      {"argv",
       {"sh", "-c", "cat > \"$0\"; echo \"$FLOWRUN_EVENT $FLOWRUN_RUN_ID\" > \"$0.env\"", f.dir.file("event.json")}}};
  exec_channel().deliver(target, event, f.services);
  CHECK(Json::parse(f.dir.read("event.json")) == event);
  CHECK(f.dir.read("event.json.env") == "item_failed r-7\n");
}

TEST_CASE("exec channel: a non-zero exit is transient with the end of stderr, arguments unnamed", "[notify][exec]") {
  Fixture f;
  const Json target = {
      {"argv", {"sh", "-c", "cat >/dev/null; echo starting; printf 'line %s\\n' 1 2 >&2; exit 3", "--token=SECRET"}}};
  StepError e = step_error_of([&] { exec_channel().deliver(target, {{"event", "failed"}}, f.services); });
  CHECK(e.kind() == ErrorKind::kTransient);
  CHECK(std::string(e.what()) == "exec sh exited 3: line 1\nline 2");

  const Json noisy = {{"argv", {"sh", "-c", "head -c 5000 /dev/zero | tr '\\0' x >&2; echo END >&2; exit 1"}}};
  e = step_error_of([&] { exec_channel().deliver(noisy, {{"event", "failed"}}, f.services); });
  const std::string message = e.what();
  CHECK(message.size() <= 520);
  CHECK(message.rfind("exec sh exited 1: xxx", 0) == 0);
  CHECK(message.substr(message.size() - 4) == "xEND");
}

TEST_CASE("exec channel: target.timeout stops a program that hangs", "[notify][exec]") {
  Fixture f;
  const Json target = {{"argv", {"sleep", "20"}}, {"timeout", "300ms"}};
  const auto start = std::chrono::steady_clock::now();
  StepError e = step_error_of([&] { exec_channel().deliver(target, {{"event", "failed"}}, f.services); });
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
  CHECK(e.kind() == ErrorKind::kTransient);
  CHECK(std::string(e.what()) == "exec sleep timed out after 300ms");
}

TEST_CASE("exec channel: a program that does not exist is permanent", "[notify][exec]") {
  Fixture f;
  StepError e = step_error_of([&] {
    exec_channel().deliver({{"argv", {"/nonexistent/notifier"}}}, {{"event", "failed"}}, f.services);
  });
  CHECK(e.kind() == ErrorKind::kPermanent);
  CHECK(std::string(e.what()).rfind("exec notifier: ", 0) == 0);
}

TEST_CASE("exec channel: check wants argv as a list of strings and a valid timeout", "[notify][exec]") {
  const Channel& c = exec_channel();
  CHECK(c.check({{"argv", {"notify-send", "flowrun"}}, {"timeout", "10s"}}).empty());
  CHECK(c.check({{"argv", {"x"}}, {"timeout", 5}}).empty());
  CHECK(c.check({{"argv", {"x"}}, {"timeout", "${{ inputs.t }}"}}).empty());
  CHECK(c.check(Json::object()) ==
        std::vector<std::string>{"argv: an exec channel needs the program and its arguments, a list of strings"});
  const std::vector<std::string> bad_argv{
      "argv: must be a non-empty list of strings, the program first (no shell is used)"};
  CHECK(c.check({{"argv", "notify-send flowrun"}}) == bad_argv);
  CHECK(c.check({{"argv", Json::array()}}) == bad_argv);
  CHECK(c.check({{"argv", {"x", 3}}}) == bad_argv);
  CHECK(c.check({{"argv", {""}}}) == bad_argv);
  CHECK(c.check({{"argv", {"x"}}, {"timeout", "soon"}}) ==
        std::vector<std::string>{"timeout: must be a duration such as \"30s\""});
}
