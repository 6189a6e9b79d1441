// The email channel: the message it writes, the TLS it demands, and mail through libcurl to the
// SMTP simulator (tools/sim/smtp_server.py).
#include "engine/notify/channels/email_channel.h"

#include <catch2/catch.hpp>

#include "engine/io/clock.h"
#include "engine/io/host_address.h"
#include "engine/io/process_runner.h"
#include "engine/io/smtp_client.h"
#include "engine/io/step_error.h"
#include "engine/notify/channels/email_message.h"
#include "support/harness.h"
#include "support/sim_server.h"
#include "support/step_error_of.h"

using namespace flowrun;
using namespace std::chrono_literals;

using flowrun::test::step_error_of;

namespace {

// As engine/notify's Notifier writes it: the step event's error and outputs on top, the rest in data.
const Json kEvent = {{"delivery_key", "r-123/videos[2]/item_failed/ops"},
                     {"run", "r-123"},
                     {"workflow", "video_batch"},
                     {"event", "item_failed"},
                     {"path", "videos[2]"},
                     {"message", "item 2 failed"},
                     {"error", "exit 1"},
                     {"outputs", {{"log", "l.txt"}}},
                     {"at", "2024-03-05T10:00:00.000Z"},
                     {"data", {{"item", "c.mp4"}, {"index", 2}}}};

// Remembers the request instead of sending it, or throws `failure`.
struct FakeSmtp final : SmtpClient {
  std::vector<SmtpRequest> sent;
  std::optional<StepError> failure;
  void send(const SmtpRequest& request, const CancelToken&) override {
    sent.push_back(request);
    if (failure) throw *failure;
  }
};

struct Fixture {
  test::NoHttp http;
  SystemProcessRunner processes;
  VirtualClock clock;
  FakeSmtp fake;
  ChannelServices services{.http = http, .processes = processes, .clock = clock, .smtp = &fake};
};

// The header lines of a message (before the first empty line), unfolded.
std::vector<std::string> header_lines(const std::string& message) {
  std::vector<std::string> lines;
  size_t at = 0;
  while (at < message.size()) {
    size_t end = message.find("\r\n", at);
    if (end == std::string::npos || end == at) break;
    std::string line = message.substr(at, end - at);
    if ((line[0] == ' ' || line[0] == '\t') && !lines.empty())
      lines.back() += line;
    else
      lines.push_back(line);
    at = end + 2;
  }
  return lines;
}

bool has_header(const std::vector<std::string>& lines, const std::string& prefix) {
  for (const std::string& l : lines)
    if (l.rfind(prefix, 0) == 0) return true;
  return false;
}

std::string body_of(const std::string& message) { return message.substr(message.find("\r\n\r\n") + 4); }

WallTime at_seconds(long long s) { return WallTime(std::chrono::seconds(s)); }

}  // namespace

TEST_CASE("email_message: headers, envelope and a readable body with the JSON", "[notify][email]") {
  Json target = {{"from", "flowrun <bot@example.com>"}, {"to", {"a@example.com", "Bee <b@example.com>"}}};
  EmailMessage m = email_message(target, kEvent, at_seconds(1709632800), 7);  // 2024-03-05 10:00:00 UTC
  CHECK(m.envelope_from == "bot@example.com");
  CHECK(m.envelope_to == std::vector<std::string>{"a@example.com", "b@example.com"});
  auto headers = header_lines(m.text);
  CHECK(headers[0] == "From: flowrun <bot@example.com>");
  CHECK(headers[1] == "To: a@example.com, Bee <b@example.com>");
  CHECK(headers[2] == "Subject: [flowrun] video_batch run r-123: item videos[2] (c.mp4) failed: exit 1");
  CHECK(headers[3] == "Date: Tue, 05 Mar 2024 10:00:00 +0000");
  CHECK(headers[4].rfind("Message-ID: <1709632800000.", 0) == 0);
  CHECK(headers[4].substr(headers[4].size() - 15) == ".7@example.com>");
  CHECK(has_header(headers, "Content-Type: text/plain; charset=utf-8"));
  CHECK(has_header(headers, "MIME-Version: 1.0"));
  const std::string body = body_of(m.text);
  CHECK(body.find("Run: r-123\r\nWorkflow: video_batch\r\nEvent: item_failed\r\nAt: 2024-03-05T10:00:00.000Z\r\n"
                  "Step: videos[2]\r\nItem: c.mp4\r\nMessage: item 2 failed\r\nError: exit 1\r\n"
                  "Outputs: {\"log\":\"l.txt\"}\r\n") != std::string::npos);
  const size_t json_at = body.find("The event as JSON:\r\n");
  REQUIRE(json_at != std::string::npos);
  std::string json = body.substr(json_at + 20);
  for (size_t p; (p = json.find('\r')) != std::string::npos;) json.erase(p, 1);
  CHECK(Json::parse(json) == kEvent);
}

TEST_CASE("email_message: CR and LF from the payload or the target never start a header", "[notify][email]") {
  Json event = {{"event", "failed"}, {"run", "r-1"}, {"error", "boom\r\nBcc: victim@example.com\nX-Evil: 1"}};
  Json target = {{"from", "bot@example.com\r\nBcc: a@b.c"},
                 {"to", "ops@example.com\nCc: c@d.e"},
                 {"subject", "[alert]\r\nReply-To: x@y.z"}};
  EmailMessage m = email_message(target, event, at_seconds(0), 1);
  auto headers = header_lines(m.text);
  for (const char* injected : {"Bcc:", "X-Evil:", "Cc:", "Reply-To:"}) CHECK_FALSE(has_header(headers, injected));
  CHECK(
      has_header(headers, "Subject: [alert]  Reply-To: x@y.z run r-1 failed: boom  Bcc: victim@example.com X-Evil: 1"));
  CHECK(m.envelope_from.find_first_of("\r\n") == std::string::npos);
  CHECK(m.envelope_to[0].find_first_of("\r\n") == std::string::npos);
}

TEST_CASE("email_message: a non-ASCII subject is RFC 2047 encoded and the body bounded", "[notify][email]") {
  Json event = {{"event", "failed"}, {"run", "r-1"}, {"error", "caf\xC3\xA9 " + std::string(200'000, 'x')}};
  EmailMessage m = email_message({{"from", "a@b.c"}, {"to", "d@e.f"}}, event, at_seconds(0), 1);
  auto headers = header_lines(m.text);
  CHECK(headers[2].rfind("Subject: =?UTF-8?B?", 0) == 0);
  CHECK(body_of(m.text).size() < kEmailMaxBody + 2000);  // + the CRLFs of the broken lines
  for (size_t at = 0, end; (end = m.text.find("\r\n", at)) != std::string::npos; at = end + 2) CHECK(end - at <= 998);
}

TEST_CASE("smtp_requires_tls: TLS unless the server is this machine", "[notify][email]") {
  CHECK(smtp_requires_tls("smtp://mail.example.com:587"));
  CHECK(smtp_requires_tls("smtp://10.0.0.5"));
  CHECK(smtp_requires_tls("smtp://127.0.0.1.example.com"));
  CHECK(smtp_requires_tls("smtps://127.0.0.1:465"));
  CHECK(smtp_requires_tls("not a url"));
  CHECK_FALSE(smtp_requires_tls("smtp://127.0.0.1:2525"));
  CHECK_FALSE(smtp_requires_tls("smtp://localhost"));
  CHECK_FALSE(smtp_requires_tls("smtp://[::1]:25"));
  CHECK_FALSE(smtp_requires_tls("smtp://127.1.2.3"));
  CHECK(is_loopback_host("LOCALHOST"));
  CHECK_FALSE(is_loopback_host("127.0.0.256"));
  CHECK_FALSE(is_loopback_host("128.0.0.1"));
}

TEST_CASE("email channel: the request carries the target's server, login and CA", "[notify][email]") {
  Fixture f;
  Json target = {{"url", "smtps://smtp.example.com:465"},
                 {"from", "bot@example.com"},
                 {"to", "ops@example.com"},
                 {"username", "bot"},
                 {"password", "hunter2hunter2"},
                 {"ca_file", "/etc/private-ca.pem"}};
  email_channel().deliver(target, kEvent, f.services);
  REQUIRE(f.fake.sent.size() == 1);
  const SmtpRequest& r = f.fake.sent[0];
  CHECK(r.url == "smtps://smtp.example.com:465");
  CHECK(r.mail_from == "bot@example.com");
  CHECK(r.recipients == std::vector<std::string>{"ops@example.com"});
  CHECK(r.username == "bot");
  CHECK(r.password == "hunter2hunter2");
  CHECK(r.ca_file == "/etc/private-ca.pem");
  CHECK(r.message.find("Subject: [flowrun] video_batch") != std::string::npos);

  f.fake.failure = StepError::transient("mail to smtps://smtp.example.com:465: login hunter2hunter2 refused");
  StepError e = step_error_of([&] { email_channel().deliver(target, kEvent, f.services); });
  CHECK(e.kind() == ErrorKind::kTransient);
  // The channel's URL counts as a secret like the password (it may carry user:password@).
  CHECK(std::string(e.what()) == "email: mail to ***: login *** refused");
}

TEST_CASE("email channel: check names what is missing", "[notify][email]") {
  const Channel& c = email_channel();
  CHECK(c.check({{"url", "smtp://localhost:25"}, {"from", "a@b.c"}, {"to", {"d@e.f"}}}).empty());
  CHECK(c.check({{"url", "${{ inputs.smtp }}"}, {"from", "a@b.c"}, {"to", "${{ inputs.to }}"}}).empty());
  CHECK(c.check(Json::object()) ==
        std::vector<std::string>{
            "url: an email channel needs the SMTP server's url (smtp://HOST:587 or smtps://HOST:465)",
            "from: an email channel needs the sender's address",
            "to: an email channel needs a recipient (an address or a list of them)"});
  CHECK(c.check({{"url", "http://x"}, {"from", "a@b.c"}, {"to", Json::array()}, {"password", "p"}}) ==
        std::vector<std::string>{"url: must start with smtp:// or smtps://",
                                 "to: must be an address or a non-empty list of addresses",
                                 "password: given without a username"});
  Fixture f;
  StepError e = step_error_of([&] { email_channel().deliver({{"to", "a@b.c"}}, kEvent, f.services); });
  CHECK(e.kind() == ErrorKind::kPermanent);
  CHECK(f.fake.sent.empty());
}

namespace {

// The simulator's smtp:// URL on 127.0.0.1.
std::string smtp_url(const test::SimServer& sim) { return "smtp" + sim.url().substr(4); }

}  // namespace

TEST_CASE("email channel: a message reaches the SMTP simulator with its headers, body and login",
          "[notify][email][sim]") {
  test::SimServer sim({{"auth", {{"username", "bot"}, {"password", "s3cret-pw"}}}}, "smtp_server.py");
  test::NoHttp http;
  SystemProcessRunner processes;
  VirtualClock clock;
  ChannelServices services{http, processes, clock};  // no smtp: the real libcurl client
  Json target = {{"url", smtp_url(sim)},
                 {"from", "flowrun <bot@example.com>"},
                 {"to", {"a@example.com", "b@example.com"}},
                 {"username", "bot"},
                 {"password", "s3cret-pw"},
                 {"subject", "[ci]\r\nBcc: victim@example.com"}};
  email_channel().deliver(target, kEvent, services);
  auto received = sim.requests();
  REQUIRE(received.size() == 1);
  CHECK(received[0]["auth"] == "bot");
  CHECK(received[0]["mail_from"] == "bot@example.com");
  CHECK(received[0]["rcpt_to"] == Json::array({"a@example.com", "b@example.com"}));
  const std::string data = received[0]["data"];
  auto headers = header_lines(data);
  CHECK(has_header(headers, "Subject: [ci]  Bcc: victim@example.com video_batch run r-123: item videos[2]"));
  CHECK_FALSE(has_header(headers, "Bcc:"));
  CHECK(has_header(headers, "To: a@example.com, b@example.com"));
  CHECK(has_header(headers, "Message-ID: <"));
  CHECK(body_of(data).find("Error: exit 1\r\n") != std::string::npos);

  target["password"] = "wrong-password";
  StepError e = step_error_of([&] { email_channel().deliver(target, kEvent, services); });
  CHECK(e.kind() == ErrorKind::kPermanent);
  CHECK(std::string(e.what()).find("wrong-password") == std::string::npos);
  CHECK(sim.requests().size() == 1);
}

TEST_CASE("email channel: refused recipients are permanent, a 4xx reply transient", "[notify][email][sim]") {
  test::NoHttp http;
  SystemProcessRunner processes;
  VirtualClock clock;
  ChannelServices services{http, processes, clock};
  {
    test::SimServer sim({{"reject_rcpt", {"nobody@example.com"}}}, "smtp_server.py");
    Json target = {{"url", smtp_url(sim)}, {"from", "bot@example.com"}, {"to", "nobody@example.com"}};
    StepError e = step_error_of([&] { email_channel().deliver(target, kEvent, services); });
    CHECK(e.kind() == ErrorKind::kPermanent);
    CHECK(std::string(e.what()).find("(smtp 550)") != std::string::npos);
  }
  {
    test::SimServer sim({{"data_reply", "451 4.3.0 try again later"}}, "smtp_server.py");
    Json target = {{"url", smtp_url(sim)}, {"from", "bot@example.com"}, {"to", "ops@example.com"}};
    StepError e = step_error_of([&] { email_channel().deliver(target, kEvent, services); });
    CHECK(e.kind() == ErrorKind::kTransient);
    CHECK(std::string(e.what()).find("(smtp 451)") != std::string::npos);
  }
}

TEST_CASE("CurlSmtpClient: a server that is not this machine gets no mail without STARTTLS", "[notify][email][sim]") {
  // mail.example.test is reached at the simulator (CONNECT_TO), so the client sees a remote host.
  for (bool offers_starttls : {false, true}) {
    test::SimServer sim({{"starttls", offers_starttls}}, "smtp_server.py");
    const std::string port = sim.url().substr(sim.url().rfind(':') + 1);
    SmtpRequest request;
    request.url = "smtp://mail.example.test:" + port;
    request.connect_to = "127.0.0.1:" + port;
    request.mail_from = "bot@example.com";
    request.recipients = {"ops@example.com"};
    request.message = "Subject: x\r\n\r\nbody\r\n";
    CurlSmtpClient client;
    CancelToken never;
    StepError e = step_error_of([&] { client.send(request, never); });
    CHECK(e.kind() == ErrorKind::kPermanent);
    CHECK(std::string(e.what()).find("STARTTLS") != std::string::npos);
    CHECK(sim.requests().empty());

    request.url = "smtp://127.0.0.1:" + port;  // the same server as loopback: plain SMTP is fine
    client.send(request, never);
    CHECK(sim.requests().size() == 1);
  }
}

TEST_CASE("CurlSmtpClient: line breaks in an address and other schemes are refused before connecting",
          "[notify][email]") {
  CurlSmtpClient client;
  CancelToken never;
  SmtpRequest request;
  request.url = "smtp://127.0.0.1:1";
  request.mail_from = "a@b.c";
  request.recipients = {"d@e.f\r\nRCPT TO:<x@y.z>"};
  StepError e = step_error_of([&] { client.send(request, never); });
  CHECK(e.kind() == ErrorKind::kPermanent);
  CHECK(std::string(e.what()) == "mail to smtp://127.0.0.1:1: an address holds a line break");
  request.url = "http://127.0.0.1:1";
  e = step_error_of([&] { client.send(request, never); });
  CHECK(std::string(e.what()) == "mail: the url must be smtp://HOST[:PORT] or smtps://HOST[:PORT]");
}
