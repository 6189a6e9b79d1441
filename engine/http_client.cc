#include "engine/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <memory>
#include <mutex>

#include "engine/expression.h"
#include "engine/step_error.h"
#include "engine/utf8.h"

namespace flowrun {
namespace {

struct Transfer {
  HttpResponse* response;
  const HttpRequest* request;
  const CancelToken* cancel;
  CURL* handle;
  bool aborted_by_consumer = false;
};

size_t on_write(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * count;
  if (t->request->on_body) {
    long status = 0;
    curl_easy_getinfo(t->handle, CURLINFO_RESPONSE_CODE, &status);
    if (!t->request->on_body(static_cast<int>(status), std::string_view(data, n))) {
      t->aborted_by_consumer = true;
      return 0;
    }
  } else {
    t->response->body.append(data, n);
  }
  return n;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * count;
  std::string line(data, n);
  if (line.rfind("HTTP/", 0) == 0) t->response->headers.clear();  // a new response (redirect, 100)
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string value = line.substr(colon + 1);
    auto first = value.find_first_not_of(" \t");
    auto last = value.find_last_not_of(" \t\r\n");
    value = first == std::string::npos ? "" : value.substr(first, last - first + 1);
    t->response->headers[name] = value;
  }
  return n;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<Transfer*>(user)->cancel->cancelled() ? 1 : 0;
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* s) const { curl_slist_free_all(s); }
};

}  // namespace

std::string HttpResponse::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

CurlHttpClient::CurlHttpClient() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

HttpResponse CurlHttpClient::send(const HttpRequest& request, const CancelToken& cancel) {
  if (cancel.cancelled()) throw StepError::cancelled("cancelled before the request was sent");
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) throw StepError::transient("cannot initialise libcurl");
  HttpResponse response;
  CURL* c = curl.get();
  Transfer transfer{&response, &request, &cancel, c};
  char error_buffer[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  if (request.method == "HEAD") curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT" || request.method == "PATCH") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  }
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  for (const auto& [name, value] : request.headers) {
    std::string line = name + ": " + value;
    headers.reset(curl_slist_append(headers.release(), line.c_str()));
  }
  headers.reset(curl_slist_append(headers.release(), "Expect:"));  // no 100-continue round trip
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &transfer);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request.connect_timeout.count()));
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(c, CURLOPT_USERAGENT, "flowrun/" FLOWRUN_VERSION);
  if (!request.aws_sigv4.empty()) {
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, request.aws_sigv4.c_str());
    curl_easy_setopt(c, CURLOPT_USERPWD, request.credentials.c_str());
  }

  CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_ABORTED_BY_CALLBACK || cancel.cancelled())
    throw StepError::cancelled(request.method + " " + request.url + " cancelled");
  if (rc == CURLE_WRITE_ERROR && transfer.aborted_by_consumer)
    throw StepError::permanent(request.method + " " + request.url + ": body consumer stopped the transfer");
  if (rc != CURLE_OK) {
    std::string detail = error_buffer[0] ? error_buffer : curl_easy_strerror(rc);
    auto err = StepError::transient(request.method + " " + request.url + ": " + detail);
    if (rc == CURLE_OPERATION_TIMEDOUT) err = StepError::timeout(request.method + " " + request.url + ": " + detail);
    throw err;
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  response.status = static_cast<int>(status);
  return response;
}

std::optional<Duration> parse_retry_after(const HttpResponse& response, std::chrono::system_clock::time_point now) {
  std::string ms = response.header("retry-after-ms");
  if (!ms.empty()) {
    char* end = nullptr;
    double v = std::strtod(ms.c_str(), &end);
    if (end && *end == '\0' && v >= 0 && v < 1e12) return Duration(static_cast<Duration::rep>(v));
  }
  std::string value = response.header("retry-after");
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](unsigned char ch) { return std::isdigit(ch); })) {
    // A server's number is not trusted to fit: more than 9 digits (31 years) is ignored.
    if (value.size() > 9) return std::nullopt;
    return std::chrono::duration_cast<Duration>(std::chrono::seconds(std::stoll(value)));
  }
  std::tm tm{};
  if (strptime(value.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm)) {
    auto when = std::chrono::system_clock::from_time_t(timegm(&tm));
    auto delta = std::chrono::duration_cast<Duration>(when - now);
    return std::max(delta, Duration::zero());
  }
  return std::nullopt;
}

bool status_expected(int status, const Json& expect) {
  if (expect.is_null()) return status >= 200 && status < 300;
  if (expect.is_number_integer()) return status == expect.get<int>();
  if (expect.is_array())
    return std::any_of(expect.begin(), expect.end(), [&](const Json& e) { return e.is_number_integer() && e.get<int>() == status; });
  return false;
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
    request.aws_sigv4 = "aws:amz:" + sig.value("region", std::string("us-east-1")) + ":" + sig.value("service", std::string("s3"));
    request.credentials = sig.value("access_key_id", std::string()) + ":" + sig.value("secret_access_key", std::string());
  }
  return request;
}

}  // namespace flowrun
