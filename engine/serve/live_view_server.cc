#include "engine/serve/live_view_server.h"

#include "engine/io/host_address.h"
#include "engine/journal/journal.h"
#include "engine/serve/http_server.h"
#include "engine/serve/journal_source.h"
#include "engine/serve/live_view.h"

namespace flowrun {

std::string live_view_settings_error(const LiveViewSettings& settings, const std::string& option) {
  std::string host;
  unsigned short port = 0;
  if (!parse_listen_address(settings.listen, host, port))
    return option + " expects HOST:PORT with an IP address (127.0.0.1:8080, [::1]:8080), got '" + settings.listen + "'";
  if (!settings.token.empty() && !valid_token(settings.token))
    return "--token may hold letters, digits and - . _ ~ + / = (at most 256), so it can travel in a header and a "
           "cookie as it is";
  if (settings.token.empty() && !is_loopback_host(host))
    return "refusing to serve on " + settings.listen +
           " without --token: that address is reachable from other machines and the view can cancel runs. Give "
           "--token (or FLOWRUN_SERVE_TOKEN), or listen on 127.0.0.1";
  return {};
}

LiveViewServer::LiveViewServer(Journal& journal, const std::string& state_dir, const LiveViewSettings& settings) {
  HttpServerOptions options;
  if (!parse_listen_address(settings.listen, options.host, options.port))
    throw std::runtime_error("cannot listen on " + settings.listen + ": not HOST:PORT");
  source_ = std::make_unique<JournalSource>(journal, state_dir, this_executable());
  // The server listens before the view knows its port (0 picks one), so requests meanwhile are
  // answered 503 until `ready_` is set.
  server_ = std::make_unique<HttpServer>(options, [this](const ServeRequest& request) {
    LiveView* view = ready_.load();
    return view ? view->handle(request) : ServeResponse{503, "text/plain", "starting\n", {}};
  });
  LiveViewOptions view_options;
  view_options.token = settings.token;
  view_options.port = server_->port();
  view_ = std::make_unique<LiveView>(*source_, view_options);
  ready_.store(view_.get());
}

LiveViewServer::~LiveViewServer() { server_.reset(); }

std::string LiveViewServer::url() const { return server_->url(); }

}  // namespace flowrun
