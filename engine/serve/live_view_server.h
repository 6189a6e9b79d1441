#pragma once
// The live view as one object: the journal's source, the routes and the HTTP server, listening
// from construction to destruction. `flowrun serve` and `--serve` on a run both use it.
#include <atomic>
#include <memory>
#include <string>

namespace flowrun {

class Journal;
class HttpServer;
class JournalSource;
class LiveView;

struct LiveViewSettings {
  std::string listen = "127.0.0.1:8080";  // HOST:PORT; port 0 picks a free one
  std::string token;                      // required when HOST is not loopback
};

// Why `settings` cannot be served (the message for the user), or empty when they can: a listen
// address that is not HOST:PORT, a token with characters a cookie cannot hold, or a
// non-loopback address without a token.
// `option` names the address's option in the message (--listen, --serve).
std::string live_view_settings_error(const LiveViewSettings& settings, const std::string& option);

class LiveViewServer {
 public:
  // Throws std::runtime_error (the address and the reason) when it cannot listen; `settings`
  // must have passed live_view_settings_error. The journal is borrowed.
  LiveViewServer(Journal& journal, const std::string& state_dir, const LiveViewSettings& settings);
  ~LiveViewServer();
  // http://HOST:PORT (the token is never part of it).
  std::string url() const;

 private:
  std::unique_ptr<JournalSource> source_;
  std::unique_ptr<LiveView> view_;
  std::atomic<LiveView*> ready_{nullptr};
  std::unique_ptr<HttpServer> server_;
};

}  // namespace flowrun
