#include "engine/notify/channels/webhook_channel.h"

#include "engine/io/http_client.h"
#include "engine/io/step_error.h"
#include "engine/io/utf8.h"
#include "engine/step_api/expressions.h"

namespace flowrun {
namespace {

class WebhookChannel final : public Channel {
 public:
  void deliver(const Json& target, const Json& payload, ChannelServices& services) const override {
    HttpRequest request;
    request.method = "POST";
    request.url = target.value("url", "");
    request.body = dump_json(payload);
    request.headers = {{"Content-Type", "application/json"},
                       {"Idempotency-Key", payload.value("delivery_key", "")},
                       {"User-Agent", "flowrun-notify"}};
    request.timeout = std::chrono::seconds(10);
    request.connect_timeout = std::chrono::seconds(5);
    request.max_body = 64 * 1024;  // the answer is not read: a receiver may not make us keep a lot
    CancelToken never;
    HttpResponse response;
    try {
      response = services.http.send(request, services.cancel ? *services.cancel : never);
    } catch (const StepError& e) {
      // curl's message may quote the URL: say only what kind of trouble it was.
      throw StepError(e.kind(), "webhook: network error (" + e.kind_name() + ")");
    }
    if (response.status >= 200 && response.status < 300) return;
    throw StepError::http(response.status, "webhook: HTTP " + std::to_string(response.status),
                          parse_retry_after(response));
  }

  std::vector<std::string> check(const Json& target) const override {
    std::vector<std::string> problems;
    for (const auto& [key, value] : target.items())
      if (key != "url") problems.push_back("unknown setting '" + key + "' (a webhook has `url`)");
    if (!target.contains("url")) {
      problems.push_back("`url` is missing");
      return problems;
    }
    const Json& url = target["url"];
    if (!url.is_string()) {
      problems.push_back("`url` must be a text");
    } else if (!holds_expression(url)) {
      const std::string& u = url.get_ref<const std::string&>();
      if (!u.empty() && u.rfind("http://", 0) != 0 && u.rfind("https://", 0) != 0)
        problems.push_back("`url` must start with http:// or https://");
    }
    return problems;
  }
};

}  // namespace

const Channel& webhook_channel() {
  static const WebhookChannel channel;
  return channel;
}

}  // namespace flowrun
