#include "steps/instance/providers/instance_provider.h"

#include <cstdlib>

#include "engine/step_api/step_context.h"
#include "engine/io/step_error.h"

namespace flowrun {

bool instance_stopped_for_good(const std::string& status) {
  // Vast's docs: once exited, unknown or offline, an instance never reaches running again.
  return status == "exited" || status == "stopped" || status == "offline" || status == "unknown" ||
         status == "frozen";
}

std::unique_ptr<InstanceProvider> provider_for(StepContext& ctx) {
  // An instance object (provision's output) knows its provider; an explicit parameter wins.
  std::string name = "local";
  const Json& instance = ctx.with().contains("instance") ? ctx.with()["instance"] : Json();
  if (instance.is_object() && instance.value("provider", Json()).is_string()) name = instance["provider"];
  name = ctx.string_param("provider", name);
  if (name == "local") return make_local_provider(ctx);
  if (name == "vastai") {
    std::string key = ctx.string_param("api_key");
    if (key.empty())
      throw StepError::permanent("provider vastai needs api_key (declare the secret VAST_API_KEY and pass "
                                 "api_key: ${{ secrets.VAST_API_KEY }})");
    // Like the official client: the api_url parameter, else $VAST_URL, else the console.
    std::string url = ctx.string_param("api_url");
    if (url.empty()) {
      const char* env = std::getenv("VAST_URL");
      url = env && *env ? env : "https://console.vast.ai";
    }
    const Duration request_timeout = ctx.duration_param("request_timeout").value_or(std::chrono::seconds(60));
    if (request_timeout <= Duration::zero()) throw StepError::permanent("request_timeout must be more than 0");
    return make_vastai_provider(url, key, request_timeout);
  }
  throw StepError::permanent("unknown provider '" + name + "' (known: local, vastai)");
}

std::string instance_label(const std::string& run_id, const std::string& own_path, const std::string& step_id) {
  // Everything up to the last ']' names the for_each item both steps belong to.
  auto bracket = own_path.rfind(']');
  std::string item = bracket == std::string::npos ? "" : own_path.substr(0, bracket + 1) + ":";
  return "flowrun:" + run_id + ":" + item + step_id;
}

std::vector<ParamSpec> provider_param_specs() {
  return {{"provider", ParamType::kString, false, "local (default: a local process) or vastai"},
          {"api_key", ParamType::kString, false, "the provider's API key; pass a secret (vastai: VAST_API_KEY)"},
          {"api_url", ParamType::kString, false, "the API's base URL (vastai: $VAST_URL, else https://console.vast.ai)"},
          {"request_timeout", ParamType::kDuration, false,
           "how long one API request may take before it is retried as lost (vastai; default 60s)"}};
}

}  // namespace flowrun
