#include "engine/io/http_client.h"

#include <curl/curl.h>
#include <strings.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <memory>
#include <mutex>
#include <optional>

#include "engine/io/byte_size.h"
#include "engine/io/curl_easy_pool.h"
#include "engine/io/curl_multi.h"
#include "engine/io/fiber_scheduler.h"
#include "engine/io/step_error.h"
#include "engine/io/utf8.h"

namespace flowrun {
namespace {

struct Transfer {
  HttpResponse* response;
  const HttpRequest* request;
  const CancelToken* cancel;
  CURL* handle;
  bool aborted_by_consumer = false;
  bool too_large = false;
};

bool is_redirect(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

size_t on_write(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * count;
  long status = 0;
  curl_easy_getinfo(t->handle, CURLINFO_RESPONSE_CODE, &status);
  // The body of a redirect we follow is not the answer.
  if (is_redirect(status) && !t->response->header("location").empty()) return n;
  if (t->request->on_body) {
    if (!t->request->on_body(static_cast<int>(status), std::string_view(data, n))) {
      t->aborted_by_consumer = true;
      return 0;
    }
  } else {
    // Counted after decompression: 300 KB of gzip can be 300 MiB of zeros.
    if (n > t->request->max_body - std::min(t->request->max_body, t->response->body.size())) {
      t->too_large = true;
      return 0;
    }
    t->response->body.append(data, n);
  }
  return n;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * count;
  const std::string_view line(data, n);
  if (line.starts_with("HTTP/")) t->response->headers.clear();  // a new response (redirect, 100)
  auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string_view value = line.substr(colon + 1);
    auto first = value.find_first_not_of(" \t\r\n");
    auto last = value.find_last_not_of(" \t\r\n");
    value = first == std::string_view::npos ? std::string_view() : value.substr(first, last - first + 1);
    t->response->headers[std::move(name)].assign(value);
  }
  return n;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<Transfer*>(user)->cancel->cancelled() ? 1 : 0;
}

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

namespace {

constexpr int kMaxRedirects = 5;
constexpr long kSharedLoopReceiveBuffer = 4096;  // CURLOPT_BUFFERSIZE of a transfer that is not streamed

// The scheme of `url` in lower case, or "" when it names none.
std::string scheme_of(const std::string& url) {
  auto colon = url.find("://");
  if (colon == std::string::npos) return "";
  std::string scheme = url.substr(0, colon);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(), [](unsigned char c) { return std::tolower(c); });
  return scheme;
}

// One request's answer, and where a 3xx answer points (empty for any other).
struct Hop {
  HttpResponse response;
  std::string redirect_to;
};

// One request, no redirect followed.
Hop perform(const HttpRequest& request, const CancelToken& cancel) {
  if (cancel.cancelled()) throw StepError::cancelled("cancelled before the request was sent");
  // A streamed body's consumer may run user code (flow.http_lines) or block: such a transfer runs
  // on the caller's thread (a pool thread for a fiber), never on the shared transfer thread, and
  // takes no slot there (a stream can last hours).
  const bool streamed = static_cast<bool>(request.on_body);
  std::optional<TransferSlot> slot;
  if (!streamed) slot.emplace();  // before the handle: a request waiting its turn holds nothing of libcurl's
  if (cancel.cancelled()) throw StepError::cancelled("cancelled before the request was sent");
  const PooledEasyHandle curl = take_easy_handle();
  CURL* c = curl.get();
  if (!c) throw StepError::transient("cannot initialise libcurl");
  HttpResponse response;
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
  // A transfer on the shared loop receives into 4 KiB, not libcurl's 16 KiB: its 256 slots'
  // buffers were 4 MiB of 10,000 polling monitors' memory, and a poll's answer mostly fits. A
  // large body costs more, smaller reads; a stream keeps the default (it has a thread of its own).
  // Refused only by a handle that still holds a buffer of another size; never sent with one.
  if (!streamed && curl_easy_setopt(c, CURLOPT_BUFFERSIZE, kSharedLoopReceiveBuffer) != CURLE_OK)
    throw StepError::transient(request.method + " " + request.url + ": libcurl refused its receive buffer's size");
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request.connect_timeout.count()));
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);  // followed in send(), which knows what to drop
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  // What we ask for, not "" (every encoding this libcurl knows): see docs/security.md.
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "gzip, deflate");
  curl_easy_setopt(c, CURLOPT_USERAGENT, "flowrun/" FLOWRUN_VERSION);
  if (!request.aws_sigv4.empty()) {
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, request.aws_sigv4.c_str());
    curl_easy_setopt(c, CURLOPT_USERPWD, request.credentials.c_str());
  }

  CURLcode rc = CURLE_OK;
  if (streamed)
    run_blocking([&] { rc = curl_easy_perform(c); });
  else
    rc = perform_transfer(c);  // on the process's transfer thread: the caller only waits
  if (rc == CURLE_ABORTED_BY_CALLBACK || cancel.cancelled())
    throw StepError::cancelled(request.method + " " + request.url + " cancelled");
  if (rc == CURLE_WRITE_ERROR && transfer.aborted_by_consumer)
    throw StepError::permanent(request.method + " " + request.url + ": body consumer stopped the transfer");
  if (rc == CURLE_WRITE_ERROR && transfer.too_large)
    throw StepError::permanent(request.method + " " + request.url + ": the response body is larger than max_body (" +
                               format_bytes(request.max_body) +
                               ", counted after decompression); raise max_body to accept it");
  if (rc == CURLE_BAD_CONTENT_ENCODING)  // the server's choice: asking again gets the same
    throw StepError::permanent(request.method + " " + request.url + ": " +
                               (error_buffer[0] ? error_buffer : curl_easy_strerror(rc)));
  if (rc == CURLE_UNSUPPORTED_PROTOCOL)
    throw StepError::permanent(request.method + " " + request.url + ": only http and https URLs are fetched");
  if (rc != CURLE_OK) {
    std::string detail = error_buffer[0] ? error_buffer : curl_easy_strerror(rc);
    auto err = StepError::transient(request.method + " " + request.url + ": " + detail);
    if (rc == CURLE_OPERATION_TIMEDOUT) err = StepError::timeout(request.method + " " + request.url + ": " + detail);
    throw err;
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  response.status = static_cast<int>(status);
  if (is_redirect(status)) {
    char* location = nullptr;
    if (curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &location) == CURLE_OK && location)
      return {std::move(response), location};
  }
  return {std::move(response), {}};
}

}  // namespace

HttpResponse CurlHttpClient::send(const HttpRequest& request, const CancelToken& cancel) {
  HttpRequest hop = request;
  const auto deadline = std::chrono::steady_clock::now() + request.timeout;
  for (int redirects = 0;; ++redirects) {
    const std::string scheme = scheme_of(hop.url);
    if (!scheme.empty() && scheme != "http" && scheme != "https")
      throw StepError::permanent(hop.method + " " + hop.url + ": only http and https URLs are fetched, not " + scheme +
                                 "://");
    Hop answer = perform(hop, cancel);
    const HttpResponse& response = answer.response;
    const std::string& next = answer.redirect_to;
    if (next.empty()) return std::move(answer.response);
    if (redirects == kMaxRedirects)
      throw StepError::permanent(request.method + " " + request.url + ": more than " + std::to_string(kMaxRedirects) +
                                 " redirects (the last to " + next + ")");
    // Credentials are for the origin they were written for: another one gets none of our headers.
    if (!same_origin(hop.url, next)) {
      hop.headers.clear();
      hop.aws_sigv4.clear();
      hop.credentials.clear();
    }
    // As browsers and curl do: 303, and 301/302 after a POST, become a GET without a body.
    if (response.status == 303 || ((response.status == 301 || response.status == 302) && hop.method == "POST")) {
      if (hop.method != "HEAD") hop.method = "GET";
      hop.body.clear();
      std::erase_if(hop.headers, [](const auto& h) { return strcasecmp(h.first.c_str(), "content-type") == 0; });
    }
    hop.url = next;
    hop.timeout = std::chrono::duration_cast<Duration>(deadline - std::chrono::steady_clock::now());
    if (hop.timeout <= Duration::zero())
      throw StepError::timeout(request.method + " " + request.url + ": timed out following redirects");
  }
}

bool same_origin(const std::string& a, const std::string& b) {
  auto parts = [](const std::string& url, std::string out[3]) {
    CURLU* u = curl_url();
    bool ok = u && curl_url_set(u, CURLUPART_URL, url.c_str(), CURLU_DEFAULT_SCHEME) == CURLUE_OK;
    const CURLUPart which[3] = {CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT};
    for (int i = 0; ok && i < 3; ++i) {
      char* p = nullptr;
      ok = curl_url_get(u, which[i], &p, i == 2 ? CURLU_DEFAULT_PORT : 0) == CURLUE_OK;
      if (ok) out[i] = p;
      curl_free(p);
    }
    curl_url_cleanup(u);
    std::transform(out[1].begin(), out[1].end(), out[1].begin(), [](unsigned char c) { return std::tolower(c); });
    return ok;
  };
  std::string pa[3], pb[3];
  return parts(a, pa) && parts(b, pb) && pa[0] == pb[0] && pa[1] == pb[1] && pa[2] == pb[2];
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

}  // namespace flowrun
