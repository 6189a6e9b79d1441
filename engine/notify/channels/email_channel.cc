#include "engine/notify/channels/email_channel.h"

#include <atomic>

#include "engine/io/clock.h"
#include "engine/io/smtp_client.h"
#include "engine/io/step_error.h"
#include "engine/notify/channels/channel_util.h"
#include "engine/notify/channels/email_message.h"

namespace flowrun {
namespace {

bool is_expression(const Json& v) { return v.is_string() && v.get<std::string>().find("${{") != std::string::npos; }

class EmailChannel final : public Channel {
 public:
  void deliver(const Json& target, const Json& payload, ChannelServices& services) const override {
    for (const std::string& problem : check(target)) throw StepError::permanent("email: " + problem);
    static std::atomic<unsigned long long> sent{0};
    EmailMessage message = email_message(target, payload, services.clock.wall_now(), ++sent);
    SmtpRequest request;
    request.url = target_string(target, "url");
    request.mail_from = message.envelope_from;
    request.recipients = message.envelope_to;
    request.message = std::move(message.text);
    request.username = target_string(target, "username");
    request.password = target_string(target, "password");
    request.ca_file = target_string(target, "ca_file");
    request.timeout = std::chrono::seconds(60);
    CurlSmtpClient curl;
    SmtpClient& smtp = services.smtp ? *services.smtp : curl;
    CancelToken never;
    const CancelToken& cancel = services.cancel ? *services.cancel : never;
    rethrow_scrubbed([&] { smtp.send(request, cancel); }, "email", {request.password, request.url}, "***");
  }

  std::vector<std::string> check(const Json& target) const override {
    std::vector<std::string> problems;
    if (!target.is_object()) return {"the channel's settings must be a mapping"};
    auto need_string = [&](const char* key, const char* what) {
      if (!target.contains(key))
        problems.push_back(std::string(key) + ": an email channel needs " + what);
      else if (!target[key].is_string() || target[key].get<std::string>().empty())
        problems.push_back(std::string(key) + ": must be a non-empty string");
    };
    need_string("url", "the SMTP server's url (smtp://HOST:587 or smtps://HOST:465)");
    need_string("from", "the sender's address");
    if (target.contains("url") && target["url"].is_string() && !is_expression(target["url"])) {
      const std::string url = target["url"].get<std::string>();
      if (url.rfind("smtp://", 0) != 0 && url.rfind("smtps://", 0) != 0)
        problems.push_back("url: must start with smtp:// or smtps://");
    }
    if (!target.contains("to")) {
      problems.push_back("to: an email channel needs a recipient (an address or a list of them)");
    } else {
      const Json& to = target["to"];
      bool ok = (to.is_string() && !to.get<std::string>().empty()) || (to.is_array() && !to.empty());
      if (to.is_array())
        for (const Json& t : to) ok = ok && t.is_string() && !t.get<std::string>().empty();
      if (!ok) problems.push_back("to: must be an address or a non-empty list of addresses");
    }
    for (const char* key : {"username", "password", "subject", "ca_file"})
      if (target.contains(key) && !target[key].is_string()) problems.push_back(std::string(key) + ": must be a string");
    if (target.contains("password") && !target.contains("username"))
      problems.push_back("password: given without a username");
    return problems;
  }
};

}  // namespace

const Channel& email_channel() {
  static const EmailChannel channel;
  return channel;
}

}  // namespace flowrun
