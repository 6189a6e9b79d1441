#include "engine/notify/channel.h"

#include "engine/notify/channels/email_channel.h"
#include "engine/notify/channels/exec_channel.h"
#include "engine/notify/channels/slack_channel.h"
#include "engine/notify/channels/webhook_channel.h"

namespace flowrun {
namespace {

struct ChannelRow {
  const char* type;
  const Channel& (*make)();
};

// One row per channel type; channel_types() lists the names for messages.
const ChannelRow kChannels[] = {
    {"webhook", webhook_channel},
    {"slack", slack_channel},
    {"email", email_channel},
    {"exec", exec_channel},
};

}  // namespace

const Channel* channel_for(std::string_view type) {
  for (const auto& row : kChannels)
    if (type == row.type) return &row.make();
  return nullptr;
}

std::vector<std::string> channel_types() { return {"webhook", "slack", "email", "exec"}; }

}  // namespace flowrun
