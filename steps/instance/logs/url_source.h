#pragma once
// A URL's text as a LogSource. A URL is read from where the last read stopped with
// `Range: bytes=N-`, so each read downloads what was appended (206). A server that ignores
// ranges (200) sends it all and the part already seen is skipped; 416 means nothing new and 404
// that there is no log yet. A log shorter than what was read was truncated or replaced, and is
// read again from its start.
#include <cstdint>
#include <string>

#include "engine/io/line_splitter.h"
#include "steps/instance/logs/log_source.h"

namespace flowrun {

class UrlLogSource final : public LogSource {
 public:
  explicit UrlLogSource(std::string url) : url_(std::move(url)) {}
  // Throws StepError::http for a status other than 2xx, 404 and 416.
  std::string read(StepContext& ctx, const LineSink& take, const LinePrefilter& may_matter) override;

 private:
  void restart(StepContext& ctx);

  std::string url_;
  uint64_t offset_ = 0;  // bytes of the log read so far
  LineSplitter lines_;
};

}  // namespace flowrun
