#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "engine/io/json.h"

namespace flowrun {

class HttpClient;
class ProcessRunner;
class Clock;
class CancelToken;
class SmtpClient;

// What a channel needs from the outside world; borrowed, and fakeable in tests.
struct ChannelServices {
  HttpClient& http;
  ProcessRunner& processes;
  Clock& clock;
  // Fires when the process stops waiting for deliveries; null: never (a channel may ignore it).
  const CancelToken* cancel = nullptr;
  SmtpClient* smtp = nullptr;  // null: the email channel sends through libcurl (CurlSmtpClient)
};

// One way to tell someone: webhook (a JSON POST of the event), slack (an incoming-webhook
// message), email (SMTP through libcurl, TLS verified), exec (argv, the event as JSON on stdin).
// `target` is the channel's resolved settings from the workflow's `notify.channels` entry
// (url, to, from, argv, ...: it holds secrets, so it is never logged); `payload` is the event
// as the webhook sends it (see docs/observability.md). deliver() returns when the receiver took
// it and throws StepError otherwise (transient: try again later; permanent: give up).
class Channel {
 public:
  virtual ~Channel() = default;
  virtual void deliver(const Json& target, const Json& payload, ChannelServices& services) const = 0;
  // Load-time check of a target's settings (before expressions are resolved, values may still
  // hold ${{ }}): the problems, each naming the setting; empty when fine.
  virtual std::vector<std::string> check(const Json& target) const = 0;
};

// The channel for a `type:`, or null when there is none of that name.
const Channel* channel_for(std::string_view type);
// The known channel types, for error messages: "webhook, slack, email, exec".
std::vector<std::string> channel_types();

}  // namespace flowrun
