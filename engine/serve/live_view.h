#pragma once
// The routes of the live view: the page, the JSON API, the cancel POST and /metrics, behind the
// token and the cross-site checks. What it shows comes from a ViewSource (the journal's in
// journal_source.h; tests give their own).
#include <optional>
#include <string>

#include "engine/io/json.h"
#include "engine/serve/http_server.h"

namespace flowrun {

enum class CancelAnswer {
  kRequested,  // the process that owns the run will cancel it (it watches the journal)
  kStarted,    // nobody owns it: a `flowrun cancel` was started
  kNotFound,
  kEnded,   // already succeeded, partial or cancelled
  kFailed,  // could not be recorded or started
};

class ViewSource {
 public:
  virtual ~ViewSource() = default;
  virtual Json overview() = 0;
  // Null when there is no such run.
  virtual Json run(const std::string& run_id) = 0;
  // An array of lines.
  virtual Json log(const std::string& run_id, const std::string& path) = 0;
  virtual CancelAnswer cancel(const std::string& run_id) = 0;
  // Prometheus exposition text; none when this build has no metrics (501).
  virtual std::optional<std::string> metrics() = 0;
};

struct LiveViewOptions {
  // Required on every request when not empty (Authorization: Bearer, or the flowrun_token cookie
  // that /?token=T sets).
  std::string token;
  // Without a token, requests must name this machine in Host (127.0.0.1, localhost, [::1]) with
  // this port: a web page whose name was rebound to 127.0.0.1 cannot read the view.
  unsigned short port = 0;
};

class LiveView {
 public:
  // Draws the per-server CSRF value from the system's random source.
  LiveView(ViewSource& source, LiveViewOptions options);
  ServeResponse handle(const ServeRequest& request) const;
  const std::string& csrf() const { return csrf_; }

 private:
  ServeResponse route(const ServeRequest& request, const std::string& path, const std::string& query) const;
  bool authorized(const ServeRequest& request) const;

  ViewSource& source_;
  LiveViewOptions options_;
  std::string csrf_;
};

// Random bytes as hex (from the system's random source).
std::string random_hex(size_t bytes);
// Equal texts, in a time that does not depend on where they differ.
bool constant_time_equal(const std::string& a, const std::string& b);
// Whether a token can travel in a header and a cookie as it is (letters, digits, - . _ ~ + / =).
bool valid_token(const std::string& token);

}  // namespace flowrun
