#pragma once
// `flowrun service unit FILE`: a systemd unit that keeps a scheduled workflow running for months.
#include <string>
#include <vector>

namespace flowrun {

struct ServiceUnitOptions {
  std::string flowrun_binary;  // absolute
  std::string workflow_file;   // absolute
  std::string workflow_name;
  std::string working_directory;  // absolute: the project root
  std::string state_dir;          // absolute
  std::string log_file;           // absolute
  std::string every;              // empty: the workflow's own schedule
  std::vector<std::string> sets;  // --set k=v, passed through
  std::string environment_file;   // where the secrets live (optional file, "-" prefix)
  std::string user;               // empty: the unit's default (root for a system unit)
  bool user_unit = false;         // a `systemctl --user` unit
};

// The unit's text: Restart=always, the working directory, the log file, SIGTERM to stop (a
// scheduled flowrun finishes or cancels its tick and exits 0), and the secrets from an
// EnvironmentFile rather than the unit itself.
std::string service_unit_text(const ServiceUnitOptions& o);

// Quotes one argument for an ExecStart= line (systemd's own quoting rules, not a shell's).
std::string systemd_quote(const std::string& arg);

}  // namespace flowrun
