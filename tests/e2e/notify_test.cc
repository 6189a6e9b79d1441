// End-to-end: notifications of the shipped video_batch (local provider) to a webhook receiver
// (tools/sim/webhook_receiver.py): one item_failed and one partial for one failing video, also
// across a SIGKILL and a resume; a receiver failing three times; a dead channel.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <regex>
#include <thread>

#include "engine/io/json.h"
#include "engine/io/sqlite_db.h"
#include "support/run_cli.h"
#include "support/sim_server.h"

using flowrun::Json;
using flowrun::test::CliResult;
using flowrun::test::FlowrunProcess;
using flowrun::test::run_flowrun;
using flowrun::test::SimServer;
using flowrun::test::TempDir;
using namespace std::chrono_literals;

namespace {

// The bundled job, except that a video named bad* prints a line the workflow's fail_on matches.
const char* const kStartCommand =
    "case \"$INPUT_VIDEO\" in *bad*) echo 'FATAL: unreadable video'; sleep 30;; "
    "*) cd \"$FLOWRUN_PROJECT_ROOT\" && sh scripts/jobs/process_video.sh \"$INPUT_VIDEO\" \"$OUTPUT_DIR\";; esac";

struct Batch {
  TempDir dir;
  std::map<std::string, std::string> env;

  explicit Batch(const std::string& stage_delay = "0.05") {
    std::filesystem::create_directories(dir.file("videos"));
    for (const char* name : {"alpha.mp4", "bad.mp4", "bravo.mp4"})
      dir.write(std::string("videos/") + name, std::string("frames of ") + name);
    env = {{"FLOWRUN_STATE_DIR", dir.file("state")}, {"JOB_STAGE_DELAY", stage_delay}};
  }
  std::vector<std::string> args(const std::string& hook) const {
    return {std::string(FLOWRUN_SOURCE_DIR) + "/workflows/video_batch.yaml",
            "--set",
            "input_dir=" + dir.file("videos"),
            "--set",
            "output_dir=" + dir.file("out"),
            "--set",
            "poll_interval=200ms",
            "--set",
            "start_command=" + std::string(kStartCommand),
            "--set",
            "notify_webhook=" + hook};
  }
  std::vector<Json> outbox() const {
    flowrun::SqliteDb db(dir.file("state/journal.db"), false);
    return db.query("SELECT delivery_key, event, status, attempts FROM outbox ORDER BY id");
  }
};

// POSTs the receiver answered 200, by Idempotency-Key.
std::map<std::string, int> delivered(const SimServer& hook) {
  std::map<std::string, int> out;
  const Json state = hook.get_json("/_sim/state");
  for (const auto& r : state["requests"])
    if (r["status"] == 200)
      ++out[r["body"]["event"].get<std::string>() + " " + r["idempotency_key"].get<std::string>()];
  return out;
}

int count_event(const std::map<std::string, int>& sent, const std::string& event) {
  int n = 0;
  for (const auto& [key, count] : sent)
    if (key.rfind(event + " ", 0) == 0) n += count;
  return n;
}

// A port nothing listens on: bound, then closed.
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("video_batch with one failing video notifies one item_failed and one partial", "[e2e][notify]") {
  SimServer hook(Json{{"fail_first", 0}}, "webhook_receiver.py");
  Batch batch;
  CliResult r = run_flowrun(batch.args(hook.url("/hook/secret-path")), batch.env);
  INFO(r.err);
  REQUIRE(r.exit_code == 3);  // partial
  auto sent = delivered(hook);
  CHECK(count_event(sent, "item_failed") == 1);
  CHECK(count_event(sent, "partial") == 1);
  CHECK(sent.size() == 2);
  const auto requests = hook.get_json("/_sim/state")["requests"];
  for (const auto& req : requests) {
    CHECK(req["content_type"] == "application/json");
    CHECK(req["body"]["delivery_key"] == req["idempotency_key"]);
    CHECK(req["body"]["workflow"] == "video_batch");
    if (req["body"]["event"] == "item_failed") {
      CHECK(req["body"]["path"] == "videos[1]");
      CHECK(req["body"]["error"].get<std::string>().find("FATAL: unreadable video") != std::string::npos);
      CHECK(std::regex_match(req["body"]["at"].get<std::string>(),
                             std::regex("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z")));
    }
    if (req["body"]["event"] == "partial") {  // how partial: the for_each's counts
      CHECK(req["body"]["data"]["failed"] == 1);
      CHECK(req["body"]["data"]["total"] == 3);
      CHECK(req["body"]["message"].get<std::string>().find(": 1 of 3 items failed") != std::string::npos);
    }
  }
  // The hook's URL is a secret: not in the output, nor in the journal outside the outbox's target.
  CHECK(r.out.find("secret-path") == std::string::npos);
  CHECK(r.err.find("secret-path") == std::string::npos);
  flowrun::SqliteDb db(batch.dir.file("state/journal.db"), false);
  CHECK(Json(db.query("SELECT inputs FROM runs")).dump().find("secret-path") == std::string::npos);
  CHECK(Json(db.query("SELECT * FROM events")).dump().find("secret-path") == std::string::npos);
  CHECK(Json(db.query("SELECT payload FROM outbox")).dump().find("secret-path") == std::string::npos);
  CliResult list = run_flowrun({"notify", "list"}, batch.env);
  CHECK(list.exit_code == 0);
  CHECK(list.out.find("/videos[1]/item_failed/team") != std::string::npos);
  CHECK(list.out.find("secret-path") == std::string::npos);
}

TEST_CASE("a notification enqueued before a SIGKILL is delivered once after resume", "[e2e][notify][durable]") {
  SimServer hook(Json{{"fail_first", 1000}}, "webhook_receiver.py");
  Batch batch("0.5");
  CliResult killed;
  {
    FlowrunProcess run(batch.args(hook.url("/hook")), batch.env);
    // item_failed waits in the outbox for its digest window (1m) while the other videos go on.
    bool enqueued = false;
    for (int i = 0; i < 400 && !enqueued; ++i) {
      std::this_thread::sleep_for(25ms);
      try {
        for (const auto& row : batch.outbox()) enqueued |= row["event"] == "item_failed";
      } catch (const std::exception&) {
        // the journal is not there yet
      }
    }
    REQUIRE(enqueued);
    run.signal(SIGKILL);
    killed = run.wait();
  }
  CHECK(delivered(hook).empty());
  std::smatch m;
  REQUIRE(std::regex_search(killed.err, m, std::regex("run (\\S+): video_batch")));
  hook.get_json("/_sim/fail?n=0");
  CliResult resumed = run_flowrun({"resume", m[1]}, batch.env);
  INFO(killed.err + resumed.err);
  CHECK(resumed.exit_code == 3);
  auto sent = delivered(hook);
  CHECK(count_event(sent, "item_failed") == 1);
  CHECK(count_event(sent, "partial") == 1);
  for (const auto& [key, n] : sent) CHECK(n == 1);
  for (const auto& row : batch.outbox()) CHECK(row["status"] == "sent");
}

TEST_CASE("a receiver answering 500 three times still gets every notification", "[e2e][notify]") {
  SimServer hook(Json{{"fail_first", 3}, {"status", 500}}, "webhook_receiver.py");
  Batch batch;
  CliResult r = run_flowrun(batch.args(hook.url("/hook")), batch.env);
  INFO(r.err);
  CHECK(r.exit_code == 3);
  auto sent = delivered(hook);
  CHECK(count_event(sent, "item_failed") == 1);
  CHECK(count_event(sent, "partial") == 1);
  CHECK(hook.get_json("/_sim/state")["requests"].size() == 5);
  CHECK(r.err.find("pending") == std::string::npos);
}

TEST_CASE("a dead channel leaves the run's outcome and exit code as they were", "[e2e][notify]") {
  Batch batch;
  const std::string dead = "http://127.0.0.1:" + std::to_string(closed_port()) + "/hook";
  CliResult r = run_flowrun(batch.args(dead), batch.env);
  INFO(r.err);
  CHECK(r.exit_code == 3);  // partial, as without notifications
  CHECK(Json::parse(read_all(batch.dir.file("out/results.json")))["failed"] == 1);
  CHECK(r.err.find("notifications: 2 pending; delivered by the next flowrun on this state dir or `flowrun notify "
                   "deliver`") != std::string::npos);
  CHECK(r.err.find(dead) == std::string::npos);
  for (const auto& row : batch.outbox()) {
    CHECK(row["status"] == "pending");
    CHECK(row["attempts"].get<int>() >= 1);
  }
  // `flowrun notify deliver` tries again now: still dead, still pending, exit 1.
  CliResult again = run_flowrun({"notify", "deliver"}, batch.env);
  CHECK(again.exit_code == 1);
  CHECK(again.out.find("2 still pending") != std::string::npos);
}

TEST_CASE("an email channel delivers a failed run to an SMTP server and keeps its password out of the output",
          "[e2e][notify]") {
  SimServer smtp({{"auth", {{"username", "bot"}, {"password", "mail-pass-5150"}}}}, "smtp_server.py");
  TempDir dir;
  dir.write("mail.yaml", R"Y(version: 1
name: mailed
inputs:
  smtp_url: {default: ""}
secrets: [SMTP_PASSWORD]
notify:
  channels:
    ops: {type: email, url: "${{ inputs.smtp_url }}", from: "flowrun@example.com", to: [ops@example.com],
          username: bot, password: "${{ secrets.SMTP_PASSWORD }}", subject: "[batch]"}
  on:
    - events: [failed]
      to: [ops]
steps:
  - id: job
    type: exec
    with: {argv: [sh, -c, "echo 'disk full' >&2; exit 4"]}
)Y");
  const std::string url = "smtp" + smtp.url().substr(4);  // http://127.0.0.1:PORT -> smtp://127.0.0.1:PORT
  CliResult r = run_flowrun({dir.file("mail.yaml"), "--set", "smtp_url=" + url},
                            {{"FLOWRUN_STATE_DIR", dir.file("state")}, {"SMTP_PASSWORD", "mail-pass-5150"}});
  INFO(r.err);
  CHECK(r.exit_code == 1);  // the run failed; the mail went out
  const auto mails = smtp.requests();
  REQUIRE(mails.size() == 1);
  CHECK(mails[0]["auth"] == "bot");
  CHECK(mails[0]["mail_from"] == "flowrun@example.com");
  CHECK(mails[0]["rcpt_to"] == Json::array({"ops@example.com"}));
  const std::string data = mails[0]["data"];
  CHECK(data.find("Subject: [batch]") != std::string::npos);
  CHECK(data.find("mailed") != std::string::npos);
  CHECK(data.find("exit") != std::string::npos);  // the failure is in the body
  CHECK(data.find("mail-pass-5150") == std::string::npos);
  CHECK(r.out.find("mail-pass-5150") == std::string::npos);
  CHECK(r.err.find("mail-pass-5150") == std::string::npos);
  CHECK(r.err.find("pending") == std::string::npos);
}
