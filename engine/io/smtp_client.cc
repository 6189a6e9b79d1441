#include "engine/io/smtp_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>

#include "engine/io/host_address.h"
#include "engine/io/step_error.h"

namespace flowrun {
namespace {

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* s) const { curl_slist_free_all(s); }
};
struct UrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};

struct Upload {
  const std::string* message;
  size_t sent = 0;
  const CancelToken* cancel;
};

size_t on_read(char* buffer, size_t size, size_t count, void* user) {
  auto* u = static_cast<Upload*>(user);
  size_t n = std::min(size * count, u->message->size() - u->sent);
  std::memcpy(buffer, u->message->data() + u->sent, n);
  u->sent += n;
  return n;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<Upload*>(user)->cancel->cancelled() ? 1 : 0;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// The scheme and host of `url` ("" each when it cannot be parsed).
std::pair<std::string, std::string> scheme_and_host(const std::string& url) {
  std::unique_ptr<CURLU, UrlDeleter> u(curl_url());
  if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return {};
  std::pair<std::string, std::string> out;
  char* part = nullptr;
  if (curl_url_get(u.get(), CURLUPART_SCHEME, &part, 0) == CURLUE_OK) out.first = lower(part);
  curl_free(part);
  part = nullptr;
  if (curl_url_get(u.get(), CURLUPART_HOST, &part, 0) == CURLUE_OK) out.second = lower(part);
  curl_free(part);
  return out;
}

// "smtp://mail.example.com:587" of a URL: no user, password, path or query (for messages).
std::string origin_of(const std::string& url) {
  std::unique_ptr<CURLU, UrlDeleter> u(curl_url());
  if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return "the mail server";
  curl_url_set(u.get(), CURLUPART_USER, nullptr, 0);
  curl_url_set(u.get(), CURLUPART_PASSWORD, nullptr, 0);
  curl_url_set(u.get(), CURLUPART_OPTIONS, nullptr, 0);
  curl_url_set(u.get(), CURLUPART_PATH, nullptr, 0);
  curl_url_set(u.get(), CURLUPART_QUERY, nullptr, 0);
  char* text = nullptr;
  std::string out = "the mail server";
  if (curl_url_get(u.get(), CURLUPART_URL, &text, 0) == CURLUE_OK) out = text;
  curl_free(text);
  if (!out.empty() && out.back() == '/') out.pop_back();
  return out;
}

}  // namespace

bool smtp_requires_tls(const std::string& url) {
  auto [scheme, host] = scheme_and_host(url);
  return scheme != "smtp" || !is_loopback_host(host);
}

CurlSmtpClient::CurlSmtpClient() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

void CurlSmtpClient::send(const SmtpRequest& request, const CancelToken& cancel) {
  const std::string where = origin_of(request.url);
  if (cancel.cancelled()) throw StepError::cancelled("mail to " + where + " cancelled before it was sent");
  auto [scheme, host] = scheme_and_host(request.url);
  if (scheme != "smtp" && scheme != "smtps")
    throw StepError::permanent("mail: the url must be smtp://HOST[:PORT] or smtps://HOST[:PORT]");
  if (request.recipients.empty()) throw StepError::permanent("mail to " + where + ": no recipients");
  // curl writes these into SMTP commands as they are: a line break would start another command.
  auto has_break = [](const std::string& s) { return s.find_first_of(std::string("\r\n\0", 3)) != std::string::npos; };
  if (has_break(request.mail_from) || std::any_of(request.recipients.begin(), request.recipients.end(), has_break))
    throw StepError::permanent("mail to " + where + ": an address holds a line break");
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) throw StepError::transient("cannot initialise libcurl");
  CURL* c = curl.get();
  char error_buffer[CURL_ERROR_SIZE] = {0};
  Upload upload{&request.message, 0, &cancel};

  std::unique_ptr<curl_slist, SlistDeleter> recipients;
  for (const std::string& r : request.recipients) recipients.reset(curl_slist_append(recipients.release(), r.c_str()));
  std::unique_ptr<curl_slist, SlistDeleter> connect_to;
  if (!request.connect_to.empty()) {
    // "HOST:PORT:CONNECT_HOST:CONNECT_PORT" with the first two empty: every connection of this handle.
    std::string rule = "::" + request.connect_to;
    connect_to.reset(curl_slist_append(nullptr, rule.c_str()));
  }

  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  curl_easy_setopt(c, CURLOPT_MAIL_FROM, request.mail_from.c_str());
  curl_easy_setopt(c, CURLOPT_MAIL_RCPT, recipients.get());
  curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
  curl_easy_setopt(c, CURLOPT_READDATA, &upload);
  curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request.message.size()));
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &upload);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request.connect_timeout.count()));
  // TLS is demanded, never merely tried, wherever the mail leaves this machine; always verified.
  curl_easy_setopt(c, CURLOPT_USE_SSL, smtp_requires_tls(request.url) ? CURLUSESSL_ALL : CURLUSESSL_NONE);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!request.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, request.ca_file.c_str());
  if (connect_to) curl_easy_setopt(c, CURLOPT_CONNECT_TO, connect_to.get());
  if (!request.username.empty()) {
    curl_easy_setopt(c, CURLOPT_USERNAME, request.username.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, request.password.c_str());
  }

  const CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_OK) return;
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  std::string detail = error_buffer[0] ? error_buffer : curl_easy_strerror(rc);
  while (!detail.empty() && (detail.back() == '\n' || detail.back() == '\r')) detail.pop_back();
  if (!request.password.empty())
    for (size_t at; (at = detail.find(request.password)) != std::string::npos;)
      detail.replace(at, request.password.size(), "***");
  const std::string message = "mail to " + where + ": " + detail + (code ? " (smtp " + std::to_string(code) + ")" : "");
  if (rc == CURLE_ABORTED_BY_CALLBACK || cancel.cancelled())
    throw StepError::cancelled("mail to " + where + " cancelled");
  if (rc == CURLE_OPERATION_TIMEDOUT) throw StepError::timeout(message);
  if (rc == CURLE_USE_SSL_FAILED)
    throw StepError::permanent(message +
                               "; the server does not offer STARTTLS, which mail to a host other than "
                               "this machine requires");
  if (rc == CURLE_LOGIN_DENIED || rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
      rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT || rc == CURLE_SSL_CERTPROBLEM)
    throw StepError::permanent(message);
  if (code >= 500 && code < 600) throw StepError::permanent(message);
  throw StepError::transient(message);
}

}  // namespace flowrun
