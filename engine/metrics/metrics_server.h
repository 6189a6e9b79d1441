#pragma once
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace prometheus {
class Exposer;
class Registry;
class Collectable;
}  // namespace prometheus

namespace flowrun {

// `--metrics` cannot serve where it was asked to: not HOST:PORT, not loopback without
// --metrics-public, or the port is taken. The CLI prints it as a usage error.
class MetricsAddressError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct MetricsAddress {
  std::string host;  // an IPv4 address (localhost is 127.0.0.1)
  int port = 0;      // 0: any free port
  bool loopback = false;
};

// Parses HOST:PORT ("127.0.0.1:9464", "localhost:9464", "0.0.0.0:9464"). Throws
// MetricsAddressError naming what is wrong.
MetricsAddress parse_metrics_address(const std::string& text);

// Serves `registry` and the outbox's notification counts (read from the journal file at each
// scrape) at http://ADDRESS/metrics, on threads of its own, for its lifetime. Loopback only
// unless `allow_public`: the page holds no secrets but tells whoever reads it what runs here.
class MetricsServer {
 public:
  // Throws MetricsAddressError for a bad, refused or busy address.
  MetricsServer(const std::string& address, bool allow_public, std::shared_ptr<prometheus::Registry> registry,
                std::string journal_path);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  int port() const { return port_; }
  // http://HOST:PORT/metrics with the port actually bound.
  std::string url() const;

 private:
  MetricsAddress address_;
  int port_ = 0;
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<prometheus::Collectable> outbox_;
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace flowrun
