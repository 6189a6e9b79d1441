#include "engine/step_api/http_request.h"

#include <algorithm>
#include <cctype>

#include "engine/io/byte_size.h"
#include "engine/io/http_reason.h"
#include "engine/io/json_text.h"
#include "engine/io/step_error.h"
#include "engine/io/utf8.h"

namespace flowrun {

bool status_expected(int status, const Json& expect) {
  if (expect.is_null()) return status >= 200 && status < 300;
  if (expect.is_number_integer()) return status == expect.get<int>();
  if (expect.is_array())
    return std::any_of(expect.begin(), expect.end(),
                       [&](const Json& e) { return e.is_number_integer() && e.get<int>() == status; });
  return false;
}

namespace {

// The one place an unexpected status becomes a StepError; `body` is where the reason is read.
void throw_unless_expected(const HttpRequest& request, const HttpResponse& response, std::string_view body,
                           const Expectation& expect) {
  if (status_expected(response.status, expect.status)) return;
  std::string message = (expect.what.empty() ? request.method + " " + request.url : expect.what) + " returned HTTP " +
                        std::to_string(response.status);
  if (expect.reason == ReasonInMessage::kAlways || (expect.reason == ReasonInMessage::kIfBody && !body.empty()))
    message += ": " + error_reason(body);
  throw StepError::http(response.status, message, parse_retry_after(response));
}

}  // namespace

void check_expected(const HttpRequest& request, const HttpResponse& response, const Expectation& expect) {
  throw_unless_expected(request, response, response.body, expect);
}

HttpResponse send_expecting(HttpClient& http, const HttpRequest& request, const CancelToken& cancel,
                            const Expectation& expect) {
  if (!request.on_body) {
    HttpResponse response = http.send(request, cancel);
    check_expected(request, response, expect);
    return response;
  }
  // A streamed body goes to the caller only for an expected status; an error's is kept for the reason.
  std::string error_body;
  HttpRequest streamed = request;
  streamed.on_body = [&](int status, std::string_view chunk) {
    if (!status_expected(status, expect.status)) {
      error_body.append(chunk.substr(0, 500 - std::min<size_t>(error_body.size(), 500)));
      return true;
    }
    return request.on_body(status, chunk);
  };
  HttpResponse response = http.send(streamed, cancel);
  throw_unless_expected(request, response, error_body.empty() ? std::string_view(response.body) : error_body, expect);
  return response;
}

std::string percent_encode(std::string_view text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string url_with_query(const std::string& url, const Json& query) {
  if (!query.is_object() || query.empty()) return url;
  std::string out = url;
  char sep = url.find('?') == std::string::npos ? '?' : '&';
  auto add = [&](const std::string& key, const Json& value) {
    if (value.is_null()) return;
    out += sep;
    out += percent_encode(key) + "=" + percent_encode(interpolation_text(value));
    sep = '&';
  };
  for (const auto& [key, value] : query.items()) {
    if (value.is_array())
      for (const auto& v : value) add(key, v);
    else
      add(key, value);
  }
  return out;
}

HttpRequest request_from_json(const Json& spec, const std::string& default_method) {
  HttpRequest request;
  request.method = spec.value("method", Json()).is_string() ? spec["method"].get<std::string>() : default_method;
  request.url = url_with_query(spec.value("url", ""), spec.value("query", Json::object()));
  const Json headers = spec.value("headers", Json::object());
  for (const auto& [k, v] : headers.items())
    request.headers.emplace_back(k, v.is_string() ? v.get<std::string>() : v.dump());
  if (spec.contains("json")) {
    request.body = dump_json(spec["json"]);
    request.headers.emplace_back("Content-Type", "application/json");
  } else if (spec.contains("body")) {
    request.body = spec["body"].is_string() ? spec["body"].get<std::string>() : dump_json(spec["body"]);
  }
  if (const Json sig = spec.value("aws_sigv4", Json()); sig.is_object()) {
    request.aws_sigv4 =
        "aws:amz:" + sig.value("region", std::string("us-east-1")) + ":" + sig.value("service", std::string("s3"));
    request.credentials =
        sig.value("access_key_id", std::string()) + ":" + sig.value("secret_access_key", std::string());
  }
  if (spec.contains("max_body")) {
    auto limit = byte_size_param(spec["max_body"]);
    if (!limit)
      throw StepError::permanent("max_body must be a positive size such as 1048576 or \"100MiB\", not " +
                                 dump_json(spec["max_body"]));
    request.max_body = *limit;
  }
  return request;
}

}  // namespace flowrun
