#pragma once
#include <chrono>
#include <string>
#include <vector>

#include "engine/io/cancel_token.h"
#include "engine/io/duration.h"

namespace flowrun {

struct SmtpRequest {
  std::string url;                      // smtp://host[:port] (STARTTLS) or smtps://host[:port] (TLS from the start)
  std::string mail_from;                // the envelope sender (MAIL FROM)
  std::vector<std::string> recipients;  // the envelope recipients (RCPT TO)
  std::string message;                  // RFC 5322: headers, an empty line, the body; CRLF line ends
  std::string username;                 // empty: no AUTH
  std::string password;
  std::string ca_file;     // a PEM bundle to verify the server with instead of the system's (a private CA)
  std::string connect_to;  // "HOST:PORT" to connect to instead of the URL's host (a tunnel; tests)
  Duration timeout{std::chrono::seconds(60)};
  Duration connect_timeout{std::chrono::seconds(10)};
};

// Whether mail to `url` must go over TLS: smtps always; smtp unless its host is loopback, so
// STARTTLS is demanded (CURLUSESSL_ALL) and a server that does not offer it is refused.
bool smtp_requires_tls(const std::string& url);

// Sends mail. Implementations are thread-safe.
class SmtpClient {
 public:
  virtual ~SmtpClient() = default;
  // Returns when the server accepted the message. Throws StepError: permanent when the server
  // refuses it (5xx, bad login, no TLS where TLS is required, an untrusted certificate), transient
  // for network trouble and 4xx, timeout, cancelled when `cancel` fires. Messages never hold the
  // password.
  virtual void send(const SmtpRequest& request, const CancelToken& cancel) = 0;
};

// libcurl: only smtp and smtps; TLS peers and host names always verified (see smtp_requires_tls).
class CurlSmtpClient final : public SmtpClient {
 public:
  CurlSmtpClient();
  void send(const SmtpRequest& request, const CancelToken& cancel) override;
};

}  // namespace flowrun
