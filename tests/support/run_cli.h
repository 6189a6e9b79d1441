#pragma once
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace flowrun::test {

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// The real flowrun binary running in the background (from the source directory), its output
// collected. FLOWRUN_STATE_DIR defaults to a directory shared by the tests unless `env` sets it.
class FlowrunProcess {
 public:
  FlowrunProcess(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {});
  ~FlowrunProcess();
  int pid() const;
  void signal(int sig);
  CliResult wait();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Runs flowrun to completion, optionally sending SIGINT `interrupt_after` after start.
CliResult run_flowrun(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {},
                      std::optional<std::chrono::milliseconds> interrupt_after = std::nullopt);

// The id and the status of the newest run in the journal of `state_dir` (`flowrun runs`); empty
// when there is none.
std::string newest_run_id(const std::string& state_dir);
std::string newest_run_status(const std::string& state_dir);

// Waits (up to `limit`) until `path` exists; false on time-out.
bool wait_for_file(const std::string& path, std::chrono::milliseconds limit = std::chrono::seconds(10));

}  // namespace flowrun::test
