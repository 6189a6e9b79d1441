#include "steps/instance/logs/url_source.h"

#include <algorithm>
#include <cstdlib>

#include "engine/io/http_client.h"
#include "engine/step_api/http_request.h"
#include "engine/step_api/step_context.h"

namespace flowrun {

std::string UrlLogSource::read(StepContext& ctx, const LineSink& take, const LinePrefilter& may_matter) {
  HttpRequest req;
  req.url = url_;
  req.timeout = ctx.bounded(std::chrono::seconds(60));
  if (offset_ > 0) req.headers.emplace_back("Range", "bytes=" + std::to_string(offset_) + "-");
  HttpResponse r = ctx.services().http.send(req, ctx.cancel());
  if (r.status == 404) return "";  // not there yet
  if (r.status == 416) {
    // "bytes */SIZE": nothing past the offset; a SIZE below it means the log was cut.
    const std::string range = r.header("content-range");
    const auto slash = range.rfind('/');
    if (slash != std::string::npos && std::strtoull(range.c_str() + slash + 1, nullptr, 10) < offset_) restart(ctx);
    return "";
  }
  check_expected(req, r, {.what = "GET " + req.url, .reason = ReasonInMessage::kNone});
  std::string_view fresh = r.body;
  if (r.status == 206) {
    const std::string range = r.header("content-range");  // "bytes START-END/SIZE"
    const uint64_t start = std::strtoull(range.c_str() + std::min<size_t>(range.size(), 6), nullptr, 10);
    if (start != offset_) {
      restart(ctx);
      return "";
    }
  } else if (offset_ > 0) {
    if (r.body.size() < offset_) {
      restart(ctx);
    } else {
      fresh.remove_prefix(offset_);
    }
  }
  offset_ += fresh.size();
  bool go = true;
  auto deliver = [&](std::string_view line) {
    if (go) go = take(line);
  };
  if (may_matter)
    lines_.feed_filtered(fresh, may_matter, deliver);
  else
    lines_.feed(fresh, deliver);
  return "";
}

void UrlLogSource::restart(StepContext& ctx) {
  ctx.log().warn("the log at the URL was truncated or replaced; reading it again from its start");
  offset_ = 0;
  lines_ = LineSplitter();
}

}  // namespace flowrun
