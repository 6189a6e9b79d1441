#pragma once
// wait-for-marker's `log_file`: every line read, appended to a file (created 0600) once per
// poll, so a crash loses at most one poll's lines.
#include <filesystem>
#include <string>
#include <string_view>

namespace flowrun {

class StepLog;

class LogCopy {
 public:
  // Creates the file's folder; throws StepError::permanent when the file cannot be opened.
  explicit LogCopy(const std::filesystem::path& path);
  ~LogCopy();
  LogCopy(const LogCopy&) = delete;
  LogCopy& operator=(const LogCopy&) = delete;

  void add(std::string_view line) { buffer_.append(line).push_back('\n'); }
  // Appends what was added since the last flush; a failed write is a warning, not a failure.
  void flush(const StepLog& log);

 private:
  int fd_ = -1;
  std::string path_;
  std::string buffer_;
};

}  // namespace flowrun
