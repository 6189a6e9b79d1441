#include "engine/metrics/metrics_server.h"

#include <arpa/inet.h>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <pthread.h>
#include <signal.h>

#include <cctype>

#include "engine/io/host_address.h"
#include "engine/io/signal_mask.h"
#include "engine/io/sqlite_db.h"
#include "engine/metrics/journal_metrics.h"

namespace flowrun {
namespace {

// flowrun_notifications_total from the outbox, read at each scrape: the deliverer may be another
// process (a later run delivering what an earlier one left pending).
class OutboxCollectable : public prometheus::Collectable {
 public:
  explicit OutboxCollectable(std::string journal_path) : journal_path_(std::move(journal_path)) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    try {
      SqliteDb db(journal_path_, false);
      return {notification_family(db)};
    } catch (const std::exception&) {
      return {};  // a scrape never fails for want of the journal; the run's own metrics still count
    }
  }

 private:
  std::string journal_path_;
};

}  // namespace

MetricsAddress parse_metrics_address(const std::string& text) {
  const std::string usage = "--metrics expects HOST:PORT such as 127.0.0.1:9464, got '" + text + "'";
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size() || text.size() > 64)
    throw MetricsAddressError(usage);
  const std::string port_text = text.substr(colon + 1);
  for (char c : port_text)
    if (!std::isdigit(static_cast<unsigned char>(c))) throw MetricsAddressError(usage);
  if (port_text.size() > 5 || std::stoi(port_text) > 65535) throw MetricsAddressError(usage + ": no such port");
  MetricsAddress address;
  address.port = std::stoi(port_text);
  std::string host = text.substr(0, colon);
  if (host == "localhost") host = "127.0.0.1";
  // Debian's prometheus-cpp server (civetweb) fails to bind an IPv6 address; say so rather than
  // report a busy port.
  if (host.find(':') != std::string::npos || host.find('[') != std::string::npos)
    throw MetricsAddressError(usage + ": IPv6 is not supported here; use 127.0.0.1:PORT");
  unsigned char bytes[4];
  if (inet_pton(AF_INET, host.c_str(), bytes) != 1)
    throw MetricsAddressError(usage + ": the host must be an IPv4 address or localhost");
  address.loopback = is_loopback_host(host);
  address.host = host;
  return address;
}

MetricsServer::MetricsServer(const std::string& address, bool allow_public,
                             std::shared_ptr<prometheus::Registry> registry, std::string journal_path)
    : address_(parse_metrics_address(address)),
      registry_(std::move(registry)),
      outbox_(std::make_shared<OutboxCollectable>(std::move(journal_path))) {
  if (!address_.loopback && !allow_public)
    throw MetricsAddressError("--metrics " + address + " is not a loopback address: anyone who can reach it reads " +
                              "what runs here; add --metrics-public to serve it anyway");
  const std::string bind = address_.host + ":" + std::to_string(address_.port);
  {
    // The server's threads take no signals: SIGINT and SIGTERM belong to the CLI's SignalWatcher,
    // which may start after this (a thread created now would otherwise die of them, and the process with it).
    NoSignalsForNewThreads no_signals;
    try {
      exposer_ = std::make_unique<prometheus::Exposer>(bind, 1);
    } catch (const std::exception& e) {
      throw MetricsAddressError("--metrics " + address + ": cannot listen there (is the port in use?): " + e.what());
    }
  }
  exposer_->RegisterCollectable(registry_);
  exposer_->RegisterCollectable(outbox_);
  const auto ports = exposer_->GetListeningPorts();
  port_ = ports.empty() ? address_.port : ports.front();
}

MetricsServer::~MetricsServer() = default;

std::string MetricsServer::url() const { return "http://" + address_.host + ":" + std::to_string(port_) + "/metrics"; }

}  // namespace flowrun
