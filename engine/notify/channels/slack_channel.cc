#include "engine/notify/channels/slack_channel.h"

#include "engine/io/http_client.h"
#include "engine/io/http_reason.h"
#include "engine/io/step_error.h"
#include "engine/io/utf8.h"
#include "engine/notify/channels/channel_util.h"
#include "engine/notify/channels/event_text.h"

namespace flowrun {
namespace {

constexpr const char* kHiddenUrl = "<slack url>";

std::string emoji_for(const std::string& event) {
  if (event == "failed" || event == "item_failed" || event == "restart_loop") return ":x:";
  if (event == "partial" || event == "stalled" || event == "instance_lost") return ":warning:";
  if (event == "succeeded" || event == "item_succeeded" || event == "recovered" || event == "instance_recovered")
    return ":white_check_mark:";
  if (event == "cancelled") return ":no_entry_sign:";
  return ":information_source:";
}

// Slack's mrkdwn reads &, < and > as markup; everything else is literal. Stops before `max`
// bytes, never inside an entity; `text` is valid UTF-8 and is cut on a character boundary.
std::string escape(const std::string& text, size_t max = std::string::npos) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    std::string piece = c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;" : std::string(1, c);
    if (out.size() + piece.size() > max) {
      while (!out.empty() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) {  // whole characters only
        out.pop_back();
        --i;
      }
      return out + "\xE2\x80\xA6";
    }
    out += piece;
  }
  return out;
}

class SlackChannel final : public Channel {
 public:
  void deliver(const Json& target, const Json& payload, ChannelServices& services) const override {
    const std::string url = target_string(target, "url");
    if (url.empty()) throw StepError::permanent("slack: the channel has no url");
    HttpRequest request;
    request.method = "POST";
    request.url = url;
    request.headers = {{"Content-Type", "application/json; charset=utf-8"}};
    request.body = dump_json(Json{{"text", slack_text(payload)}});
    request.timeout = std::chrono::seconds(30);
    request.max_body = 64 << 10;
    CancelToken never;
    const CancelToken& cancel = services.cancel ? *services.cancel : never;
    HttpResponse response;
    rethrow_scrubbed([&] { response = services.http.send(request, cancel); }, "slack", {url}, kHiddenUrl);
    if (response.status >= 200 && response.status < 300) return;
    std::string reason = scrub(error_reason(response.body), {url}, kHiddenUrl);
    throw StepError::http(
        response.status,
        "slack: the webhook answered " + std::to_string(response.status) + (reason.empty() ? "" : ": " + reason),
        parse_retry_after(response));
  }

  std::vector<std::string> check(const Json& target) const override {
    std::vector<std::string> problems;
    if (!target.is_object() || !target.contains("url"))
      problems.push_back("url: a slack channel needs the incoming webhook's url");
    else if (!target["url"].is_string() || target["url"].get<std::string>().empty())
      problems.push_back("url: must be a non-empty string");
    return problems;
  }
};

}  // namespace

std::string slack_text(const Json& payload) {
  const std::string event = event_kind(payload);
  const std::string head = emoji_for(event) + " ";
  const std::string link = event_link(payload);
  // A link Slack would not parse (spaces, |, >) is shown as text instead.
  std::string suffix;
  if (!link.empty())
    suffix = link.find_first_of(" |<>") == std::string::npos ? "\n<" + link + "|live view>" : "\n" + escape(link);
  const size_t room = kSlackMaxText - head.size() - suffix.size() - 3;  // 3: the "…" of a cut
  return head + escape(event_headline(payload, kSlackMaxText), room) + suffix;
}

const Channel& slack_channel() {
  static const SlackChannel channel;
  return channel;
}

}  // namespace flowrun
