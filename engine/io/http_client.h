#pragma once
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/io/cancel_token.h"
#include "engine/io/duration.h"
#include "engine/io/json.h"

namespace flowrun {

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  Duration timeout{std::chrono::seconds(60)};
  Duration connect_timeout{std::chrono::seconds(10)};
  // When set ("aws:amz:REGION:SERVICE"), the request is signed with AWS Signature V4 (S3 and
  // S3-compatible stores) using `credentials`, "ACCESS_KEY_ID:SECRET_ACCESS_KEY".
  std::string aws_sigv4;
  std::string credentials;
  // The largest response body kept, counted after decompression; a larger one aborts the transfer
  // with a permanent error. Not applied to `on_body`, whose consumer bounds what it keeps.
  size_t max_body = kDefaultMaxBody;
  static constexpr size_t kDefaultMaxBody = size_t{64} << 20;
  // When set, the body is handed over chunk by chunk, with the response's status, instead of
  // kept in the response; returning false aborts the transfer.
  std::function<bool(int status, std::string_view chunk)> on_body;
};

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::string header(const std::string& lower_name) const;
};

// Sends HTTP requests. Implementations are thread-safe.
class HttpClient {
 public:
  virtual ~HttpClient() = default;
  // Returns any response the server gave, whatever its status. Throws StepError: transient for
  // network failures and time-outs, cancelled when `cancel` fires.
  virtual HttpResponse send(const HttpRequest& request, const CancelToken& cancel) = 0;
};

// libcurl, TLS peers and host names always verified. Only http and https; up to 5 redirects,
// followed here rather than by curl so that a redirect to another origin (scheme, host, port)
// carries none of the request's own headers (Authorization, x-api-key, ...) nor its AWS signature.
// Accepts gzip and deflate bodies and decodes them.
class CurlHttpClient final : public HttpClient {
 public:
  CurlHttpClient();
  HttpResponse send(const HttpRequest& request, const CancelToken& cancel) override;
};

// Retry-After is either delay-seconds or an HTTP-date; "retry-after-ms" is milliseconds.
std::optional<Duration> parse_retry_after(const HttpResponse& response,
                                          std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

// Whether two absolute URLs have the same scheme, host and port (false when either cannot be parsed).
bool same_origin(const std::string& a, const std::string& b);

}  // namespace flowrun
