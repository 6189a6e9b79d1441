// The HTTP server's bounds, over real sockets on 127.0.0.1.
#include "engine/serve/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "engine/io/host_address.h"

using namespace flowrun;
using namespace std::chrono_literals;

namespace {

// A raw client: connects, sends `text`, reads until the server closes (or `limit` passes).
struct RawClient {
  int fd = -1;
  explicit RawClient(unsigned short port) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    timeval tv{15, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawClient() { ::close(fd); }
  void send(const std::string& text) const { ::send(fd, text.data(), text.size(), MSG_NOSIGNAL); }
  std::string read_all() const {
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<size_t>(n));
    return out;
  }
};

std::string status_line(const std::string& reply) { return reply.substr(0, reply.find("\r\n")); }

HttpServerOptions any_port() {
  HttpServerOptions o;
  o.port = 0;
  return o;
}

}  // namespace

TEST_CASE("http server answers a request and passes method, target, headers and body", "[serve][http]") {
  ServeRequest seen;
  HttpServer server(any_port(), [&](const ServeRequest& r) {
    seen = r;
    return ServeResponse{200, "text/plain", "hello", {{"X-Test", "1"}}};
  });
  CHECK(server.url() == "http://127.0.0.1:" + std::to_string(server.port()));
  RawClient c(server.port());
  c.send("POST /a/b?x=1 HTTP/1.1\r\nHost: h\r\nX-Thing: v\r\nContent-Length: 4\r\n\r\nbody");
  const std::string reply = c.read_all();
  CHECK(status_line(reply) == "HTTP/1.1 200 OK");
  CHECK(reply.find("X-Test: 1") != std::string::npos);
  CHECK(reply.substr(reply.size() - 5) == "hello");
  CHECK(seen.method == "POST");
  CHECK(seen.target == "/a/b?x=1");
  CHECK(seen.header("x-thing") == "v");
  CHECK(seen.body == "body");
}

TEST_CASE("http server bounds headers, bodies, time and connections", "[serve][http]") {
  std::atomic<int> handled{0};
  HttpServerOptions options = any_port();
  options.max_connections = 2;
  options.request_timeout = 700ms;
  HttpServer server(options, [&](const ServeRequest&) {
    ++handled;
    return ServeResponse{200, "text/plain", "ok", {}};
  });

  {
    RawClient c(server.port());
    c.send("GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n");
    CHECK(status_line(c.read_all()) == "HTTP/1.1 431 Request Header Fields Too Large");
  }
  {
    RawClient c(server.port());
    c.send("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 20000\r\n\r\n" + std::string(20000, 'b'));
    CHECK(status_line(c.read_all()) == "HTTP/1.1 413 Payload Too Large");
  }
  {
    RawClient c(server.port());
    c.send("NOT HTTP AT ALL\r\n\r\n");
    CHECK(status_line(c.read_all()) == "HTTP/1.1 400 Bad Request");
  }
  CHECK(handled == 0);

  // Two silent clients hold both connections: a third is turned away at once, and the silent
  // ones are cut at the request timeout, after which the server answers again.
  const auto start = std::chrono::steady_clock::now();
  RawClient slow1(server.port()), slow2(server.port());
  // Both accepted before the third connects (a loaded machine's accept thread can lag 100 ms).
  for (int i = 0; i < 500 && server.open_connections() < 2; ++i) std::this_thread::sleep_for(10ms);
  REQUIRE(server.open_connections() == 2);
  {
    RawClient third(server.port());
    third.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK(status_line(third.read_all()) == "HTTP/1.1 503 Service Unavailable");
  }
  CHECK(slow1.read_all().empty());  // closed without an answer
  CHECK(std::chrono::steady_clock::now() - start < 3s);
  slow2.read_all();
  RawClient again(server.port());
  again.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(status_line(again.read_all()) == "HTTP/1.1 200 OK");
  CHECK(handled == 1);
}

TEST_CASE("http server stops with a client still connected", "[serve][http]") {
  auto server = std::make_unique<HttpServer>(any_port(), [](const ServeRequest&) { return ServeResponse{}; });
  RawClient silent(server->port());
  const auto start = std::chrono::steady_clock::now();
  server.reset();
  CHECK(std::chrono::steady_clock::now() - start < 2s);
}

TEST_CASE("listen addresses and loopback hosts", "[serve][http]") {
  std::string host;
  unsigned short port = 0;
  CHECK(parse_listen_address("127.0.0.1:8080", host, port));
  CHECK((host == "127.0.0.1" && port == 8080));
  CHECK(parse_listen_address("[::1]:0", host, port));
  CHECK((host == "::1" && port == 0));
  CHECK(parse_listen_address(":9000", host, port));
  CHECK(host == "127.0.0.1");
  CHECK_FALSE(parse_listen_address("127.0.0.1", host, port));
  CHECK_FALSE(parse_listen_address("127.0.0.1:99999", host, port));
  CHECK_FALSE(parse_listen_address("example.com:80", host, port));
  CHECK(is_loopback_host("127.0.0.1"));
  CHECK(is_loopback_host("127.1.2.3"));
  CHECK(is_loopback_host("::1"));
  CHECK(is_loopback_host("localhost"));
  CHECK_FALSE(is_loopback_host("0.0.0.0"));
  CHECK_FALSE(is_loopback_host("192.168.1.5"));
}
