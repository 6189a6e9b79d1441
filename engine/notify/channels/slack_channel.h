#pragma once
#include <string>

#include "engine/io/json.h"
#include "engine/notify/channel.h"

namespace flowrun {

// `type: slack`: POSTs {"text": ...} to a Slack incoming webhook (target.url). 429 and 5xx are
// transient (Retry-After kept), any other non-2xx permanent.
const Channel& slack_channel();

// The message text for `payload`: an emoji, the headline, the error and the live view's link,
// escaped for Slack's mrkdwn (&, <, >) and at most kSlackMaxText bytes.
constexpr size_t kSlackMaxText = 3000;
std::string slack_text(const Json& payload);

}  // namespace flowrun
