#pragma once
// A local log file as a LogSource: read by offset (FileFollower), so a poll reads only what was
// appended, however large the file.
#include <filesystem>

#include "steps/instance/logs/file_follower.h"
#include "steps/instance/logs/log_source.h"

namespace flowrun {

class FileLogSource final : public LogSource {
 public:
  explicit FileLogSource(std::filesystem::path path) : path_(std::move(path)) {}
  std::string read(StepContext& ctx, const LineSink& take, const LinePrefilter& may_matter) override;

 private:
  std::filesystem::path path_;
  FileFollower follower_;
};

}  // namespace flowrun
