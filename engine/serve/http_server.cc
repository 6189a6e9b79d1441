#include "engine/serve/http_server.h"

#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <optional>
#include <stdexcept>
#include <thread>

#include "engine/io/host_address.h"
#include "engine/io/mutex.h"
#include "engine/io/signal_mask.h"

namespace flowrun {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

using SteadyTime = std::chrono::steady_clock::time_point;

http::response<http::string_body> to_beast(const ServeResponse& r) {
  http::response<http::string_body> out{static_cast<http::status>(r.status), 11};
  out.set(http::field::server, "flowrun");
  if (!r.content_type.empty()) out.set(http::field::content_type, r.content_type);
  for (const auto& [name, value] : r.headers) out.insert(name, value);
  out.body() = r.body;
  out.keep_alive(false);
  out.prepare_payload();
  return out;
}

ServeResponse plain(int status, const std::string& text) {
  ServeResponse r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = text + "\n";
  return r;
}

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  ServeHandler handler;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  unsigned short port = 0;
  std::thread accept_thread, reaper_thread;

  // Open connections: their sockets' descriptors and deadlines. A blocking read past its deadline
  // (or any read when stopping) is woken by shutting the socket down, so no connection outlives
  // request_timeout and the server's destructor does not wait on a silent client.
  Mutex mutex;
  std::condition_variable changed;
  struct Open {
    int fd;
    SteadyTime deadline;
  };
  std::map<long, Open> open GUARDED_BY(mutex);
  long next_id GUARDED_BY(mutex) = 0;
  bool stopping GUARDED_BY(mutex) = false;
  int running GUARDED_BY(mutex) = 0;  // connection threads not yet finished

  void accept_loop() {
    for (;;) {
      tcp::socket socket(io);
      beast::error_code ec;
      acceptor.accept(socket, ec);
      {
        MutexLock lock(mutex);
        if (stopping) return;
      }
      if (ec) continue;
      long id = -1;
      {
        MutexLock lock(mutex);
        if (static_cast<int>(open.size()) < options.max_connections) {
          id = next_id++;
          open[id] = Open{socket.native_handle(), std::chrono::steady_clock::now() + options.request_timeout};
        }
      }
      if (id < 0) {
        // Over the limit: a short answer that cannot block this loop, then the socket closes.
        static const char kBusy[] =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\nConnection: close\r\n\r\nbusy\n";
        ::send(socket.native_handle(), kBusy, sizeof kBusy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        continue;
      }
      {
        MutexLock lock(mutex);
        ++running;
      }
      std::thread([this, id, s = std::make_unique<tcp::socket>(std::move(socket))]() mutable {
        serve(id, *s);
        s.reset();  // the socket uses `io`: gone before the destructor may go on
        MutexLock lock(mutex);
        --running;
        changed.notify_all();
      }).detach();
    }
  }

  void serve(long id, tcp::socket& socket) {
    beast::error_code ec;
    beast::flat_buffer buffer;
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
    parser.body_limit(options.max_body_bytes);
    http::read(socket, buffer, parser, ec);
    std::optional<ServeResponse> response;
    if (ec == http::error::header_limit) {
      response = plain(431, "request headers too large");
    } else if (ec == http::error::body_limit) {
      response = plain(413, "request body too large");
    } else if (ec && ec.category() == http::make_error_code(http::error::bad_target).category() &&
               ec != http::error::end_of_stream && ec != http::error::partial_message) {
      response = plain(400, "bad request");
    } else if (!ec) {
      const auto& message = parser.get();
      ServeRequest request;
      request.method = std::string(message.method_string());
      request.target = std::string(message.target());
      for (const auto& field : message) {
        std::string name(field.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string value(field.value());
        auto [it, fresh] = request.headers.emplace(name, value);
        if (!fresh) it->second += (name == "cookie" ? "; " : ", ") + value;
      }
      request.body = message.body();
      try {
        response = handler(request);
      } catch (const std::exception&) {
        response = plain(500, "internal error");
      }
    }
    if (response) {
      auto out = to_beast(*response);
      http::write(socket, out, ec);
    }
    // The slot is free before the client sees the close, so a client that waits for the answer
    // finds the slot free; the descriptor stays open until then, so the reaper never shuts down
    // a reused one.
    {
      MutexLock lock(mutex);
      open.erase(id);
      changed.notify_all();
    }
    socket.shutdown(tcp::socket::shutdown_send, ec);
    socket.close(ec);
  }

  void reap_loop() {
    MutexLock lock(mutex);
    while (!stopping) {
      lock.wait_for(changed, std::chrono::milliseconds(200), [this]() REQUIRES(mutex) { return stopping; });
      const auto now = std::chrono::steady_clock::now();
      for (auto it = open.begin(); it != open.end();) {
        if (!stopping && it->second.deadline > now) {
          ++it;
          continue;
        }
        // The slot is free before the client sees the cut, as after an answer (serve); the
        // descriptor is no longer ours to touch, so a reused one is never shut down.
        ::shutdown(it->second.fd, SHUT_RDWR);
        it = open.erase(it);
      }
    }
  }
};

HttpServer::HttpServer(const HttpServerOptions& options, ServeHandler handler) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  impl_->handler = std::move(handler);
  beast::error_code ec;
  const std::string where = options.host + ":" + std::to_string(options.port);
  const auto address = asio::ip::make_address(options.host == "localhost" ? "127.0.0.1" : options.host, ec);
  if (ec) throw std::runtime_error("cannot listen on " + where + ": not an IP address");
  tcp::endpoint endpoint(address, options.port);
  impl_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(endpoint, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error("cannot listen on " + where + ": " + ec.message());
  impl_->port = impl_->acceptor.local_endpoint().port();
  // The server's threads (and the connection threads they start) take no signals.
  NoSignalsForNewThreads no_signals;
  impl_->accept_thread = std::thread([this] { impl_->accept_loop(); });
  impl_->reaper_thread = std::thread([this] { impl_->reap_loop(); });
}

HttpServer::~HttpServer() {
  {
    MutexLock lock(impl_->mutex);
    impl_->stopping = true;
    for (auto& [id, c] : impl_->open) ::shutdown(c.fd, SHUT_RDWR);
  }
  // Wakes the blocking accept (Linux answers it EINVAL).
  ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);
  impl_->changed.notify_all();
  impl_->accept_thread.join();
  impl_->reaper_thread.join();
  {
    MutexLock lock(impl_->mutex);
    for (auto& [id, c] : impl_->open) ::shutdown(c.fd, SHUT_RDWR);
    lock.wait(impl_->changed, [this]() REQUIRES(impl_->mutex) { return impl_->open.empty() && impl_->running == 0; });
  }
  beast::error_code ec;
  impl_->acceptor.close(ec);
}

int HttpServer::open_connections() const {
  MutexLock lock(impl_->mutex);
  return static_cast<int>(impl_->open.size());
}

unsigned short HttpServer::port() const { return impl_->port; }

std::string HttpServer::url() const {
  const std::string& host = impl_->options.host;
  const bool v6 = host.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(impl_->port);
}

bool parse_listen_address(const std::string& text, std::string& host, unsigned short& port) {
  std::string port_text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') return false;
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon) return false;
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  if (host.empty()) host = "127.0.0.1";
  if (port_text.empty() || port_text.size() > 5 || port_text.find_first_not_of("0123456789") != std::string::npos)
    return false;
  const long value = std::stol(port_text);
  if (value > 65535) return false;
  port = static_cast<unsigned short>(value);
  beast::error_code ec;
  asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  return !ec;
}

}  // namespace flowrun
