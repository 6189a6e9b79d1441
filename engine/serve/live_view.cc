#include "engine/serve/live_view.h"

#include <random>

#include "engine/io/utf8.h"
#include "engine/serve/page.h"

namespace flowrun {
namespace {

const char* const kTokenCookie = "flowrun_token";

ServeResponse text_response(int status, const std::string& text) {
  ServeResponse r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = text + "\n";
  return r;
}

ServeResponse json_response(int status, const Json& value) {
  ServeResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = dump_json(value);
  return r;
}

ServeResponse error_response(int status, const std::string& message) {
  return json_response(status, Json{{"error", message}});
}

std::optional<std::string> percent_decode(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] == '%') {
      if (i + 2 >= text.size() || !std::isxdigit(static_cast<unsigned char>(text[i + 1])) ||
          !std::isxdigit(static_cast<unsigned char>(text[i + 2])))
        return std::nullopt;
      out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

// The value of `name` in an a=1&b=2 query, decoded; none when absent or malformed.
std::optional<std::string> query_param(const std::string& query, const std::string& name) {
  size_t start = 0;
  while (start <= query.size()) {
    size_t end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    const std::string pair = query.substr(start, end - start);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name)
      return eq == std::string::npos ? std::string() : percent_decode(pair.substr(eq + 1));
    start = end + 1;
  }
  return std::nullopt;
}

std::string cookie_value(const std::string& header, const std::string& name) {
  size_t start = 0;
  while (start < header.size()) {
    size_t end = header.find(';', start);
    if (end == std::string::npos) end = header.size();
    std::string part = header.substr(start, end - start);
    const size_t first = part.find_first_not_of(' ');
    part = first == std::string::npos ? "" : part.substr(first);
    if (part.rfind(name + "=", 0) == 0) return part.substr(name.size() + 1);
    start = end + 1;
  }
  return {};
}

bool valid_run_id(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
  return id != "." && id != "..";
}

bool is_page_path(const std::string& path) {
  return path == "/" || (path.rfind("/runs/", 0) == 0 && valid_run_id(path.substr(6)));
}

// Headers every answer carries: no sniffing, no framing, no caching, no referrer, and no CORS
// header at all (other origins cannot read any of it).
void secure(ServeResponse& r) {
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("Cross-Origin-Resource-Policy", "same-origin");
}

}  // namespace

std::string random_hex(size_t bytes) {
  std::random_device device;  // the system's random source (getrandom / /dev/urandom)
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes; ++i) {
    const unsigned value = device() & 0xff;
    out += kHex[value >> 4];
    out += kHex[value & 0xf];
  }
  return out;
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  const size_t n = std::max(a.size(), b.size());
  unsigned diff = a.size() != b.size() ? 1u : 0u;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned>(x ^ y);
  }
  return diff == 0;
}

bool valid_token(const std::string& token) {
  if (token.empty() || token.size() > 256) return false;
  for (char c : token)
    if (!std::isalnum(static_cast<unsigned char>(c)) && std::string("-._~+/=").find(c) == std::string::npos)
      return false;
  return true;
}

LiveView::LiveView(ViewSource& source, LiveViewOptions options)
    : source_(source), options_(std::move(options)), csrf_(random_hex(16)) {}

bool LiveView::authorized(const ServeRequest& request) const {
  const std::string authorization = request.header("authorization");
  if (authorization.rfind("Bearer ", 0) == 0 && constant_time_equal(authorization.substr(7), options_.token))
    return true;
  const std::string cookie = cookie_value(request.header("cookie"), kTokenCookie);
  return !cookie.empty() && constant_time_equal(cookie, options_.token);
}

ServeResponse LiveView::handle(const ServeRequest& request) const {
  const size_t question = request.target.find('?');
  const std::string path = request.target.substr(0, question);
  const std::string query = question == std::string::npos ? "" : request.target.substr(question + 1);
  ServeResponse response;
  if (!options_.token.empty()) {
    const auto given = query_param(query, "token");
    if (request.method == "GET" && is_page_path(path) && given) {
      // The token leaves the URL (history, logs, screenshots) for an HttpOnly cookie.
      if (!constant_time_equal(*given, options_.token)) {
        response = text_response(401, "401: wrong token");
      } else {
        response = text_response(303, "see " + path);
        response.headers.emplace_back("Location", path);
        response.headers.emplace_back(
            "Set-Cookie", std::string(kTokenCookie) + "=" + options_.token + "; Path=/; HttpOnly; SameSite=Strict");
      }
    } else if (!authorized(request)) {
      response = text_response(401,
                               "401: this view needs its token: open /?token=TOKEN once, or send "
                               "Authorization: Bearer TOKEN");
      response.headers.emplace_back("WWW-Authenticate", "Bearer");
    } else {
      response = route(request, path, query);
    }
  } else {
    const std::string host = request.header("host");
    const std::string port = ":" + std::to_string(options_.port);
    if (host != "127.0.0.1" + port && host != "localhost" + port && host != "[::1]" + port)
      response = text_response(403, "403: unexpected Host header (this view answers to 127.0.0.1" + port + ")");
    else
      response = route(request, path, query);
  }
  secure(response);
  return response;
}

ServeResponse LiveView::route(const ServeRequest& request, const std::string& path, const std::string& query) const {
  const bool get = request.method == "GET";
  if (is_page_path(path)) {
    if (!get) return text_response(405, "405: GET only");
    const std::string nonce = random_hex(16);
    ServeResponse r;
    r.content_type = "text/html; charset=utf-8";
    r.body = live_view_page(nonce, csrf_);
    r.headers.emplace_back("Content-Security-Policy",
                           "default-src 'self'; script-src 'nonce-" + nonce + "'; style-src 'self' 'nonce-" + nonce +
                               "'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
                               "frame-ancestors 'none'");
    return r;
  }
  if (path == "/metrics") {
    if (!get) return text_response(405, "405: GET only");
    auto text = source_.metrics();
    if (!text) return text_response(501, "501: this flowrun has no metrics");
    ServeResponse r = text_response(200, "");
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = *text;
    return r;
  }
  if (path == "/api/runs") {
    if (!get) return error_response(405, "GET only");
    return json_response(200, source_.overview());
  }
  if (path.rfind("/api/runs/", 0) != 0) return text_response(404, "404: not found");
  std::string rest = path.substr(10);
  const size_t slash = rest.find('/');
  const std::string run_id = rest.substr(0, slash);
  const std::string action = slash == std::string::npos ? "" : rest.substr(slash + 1);
  if (!valid_run_id(run_id)) return error_response(404, "no such run");
  if (action.empty()) {
    if (!get) return error_response(405, "GET only");
    Json view = source_.run(run_id);
    if (view.is_null()) return error_response(404, "no run " + run_id);
    return json_response(200, view);
  }
  if (action == "log") {
    if (!get) return error_response(405, "GET only");
    const auto step = query_param(query, "path");
    if (!step || step->empty() || step->size() > 1000) return error_response(400, "log needs ?path=STEP_PATH");
    return json_response(200, Json{{"path", *step}, {"lines", source_.log(run_id, *step)}});
  }
  if (action == "cancel") {
    if (request.method != "POST") return error_response(405, "POST only");
    // A cross-site page can send a form POST, but not a custom header, and a browser says where
    // the request came from.
    if (!constant_time_equal(request.header("x-flowrun-csrf"), csrf_))
      return error_response(403, "missing or wrong X-Flowrun-Csrf header (use the page's cancel button)");
    const std::string origin = request.header("origin");
    if (!origin.empty() && origin != "http://" + request.header("host"))
      return error_response(403, "cross-origin request refused");
    const std::string site = request.header("sec-fetch-site");
    if (!site.empty() && site != "same-origin") return error_response(403, "cross-site request refused");
    switch (source_.cancel(run_id)) {
      case CancelAnswer::kRequested:
        return json_response(202, Json{{"cancel", "requested"}, {"run", run_id}});
      case CancelAnswer::kStarted:
        return json_response(202, Json{{"cancel", "started"}, {"run", run_id}});
      case CancelAnswer::kNotFound:
        return error_response(404, "no run " + run_id);
      case CancelAnswer::kEnded:
        return error_response(409, "run " + run_id + " already ended");
      case CancelAnswer::kFailed:
        break;
    }
    return error_response(500, "could not cancel run " + run_id + " (see the server's log)");
  }
  return error_response(404, "not found");
}

}  // namespace flowrun
