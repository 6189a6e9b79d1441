#pragma once
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace flowrun::test {

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs the real flowrun binary with `args` (from the source directory), optionally sending
// SIGINT `interrupt_after` after start. Extra environment variables are added.
CliResult run_flowrun(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {},
                      std::optional<std::chrono::milliseconds> interrupt_after = std::nullopt);

}  // namespace flowrun::test
