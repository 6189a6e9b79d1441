#pragma once
// A small HTTP/1.1 server (Boost.Beast, kept out of this header): one request per connection,
// bounded in size, time and number of connections. The live view's routes are a handler.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace flowrun {

// One request as the handler sees it; header names are lower case.
struct ServeRequest {
  std::string method;
  std::string target;  // path and query, as sent
  std::map<std::string, std::string> headers;
  std::string body;
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct ServeResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

using ServeHandler = std::function<ServeResponse(const ServeRequest&)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  unsigned short port = 8080;                         // 0: any free port (see HttpServer::port)
  int max_connections = 16;                           // more are answered 503 at once
  std::chrono::milliseconds request_timeout{10'000};  // reading, handling and writing one request
  size_t max_header_bytes = 8 * 1024;
  size_t max_body_bytes = 16 * 1024;
};

// Listens from construction (throws std::runtime_error naming the address when it cannot) until
// destruction, which closes the listener and waits for the connections in progress. The handler
// is called on connection threads, several at once.
class HttpServer {
 public:
  HttpServer(const HttpServerOptions& options, ServeHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  unsigned short port() const;
  // http://HOST:PORT (IPv6 hosts in brackets).
  std::string url() const;
  // Connections accepted and not yet answered or cut (at most max_connections).
  int open_connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "HOST:PORT" or "[V6]:PORT" or ":PORT" split; false when it is not of that form.
bool parse_listen_address(const std::string& text, std::string& host, unsigned short& port);

}  // namespace flowrun
