#include "engine/cli/service_unit.h"

#include <cctype>
#include <sstream>
#include <string_view>

namespace flowrun {

std::string systemd_quote(const std::string& arg) {
  bool plain = !arg.empty();
  for (char c : arg)
    if (!(std::isalnum(static_cast<unsigned char>(c)) ||
          std::string_view("/._-=:,+@").find(c) != std::string_view::npos))
      plain = false;
  if (plain) return arg;
  std::string out = "\"";
  for (char c : arg) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '$') out += '$';  // "$$" is a literal dollar in ExecStart=
    if (c == '%') out += '%';  // "%%" is a literal percent (specifiers)
    out += c;
  }
  return out + "\"";
}

std::string service_unit_text(const ServiceUnitOptions& o) {
  std::vector<std::string> argv = {o.flowrun_binary, o.workflow_file, "--state-dir",
                                   o.state_dir,      "--log-file",    o.log_file};
  if (!o.every.empty()) argv.insert(argv.end(), {"--every", o.every});
  for (const auto& s : o.sets) argv.insert(argv.end(), {"--set", s});
  std::string exec;
  for (const auto& a : argv) exec += (exec.empty() ? "" : " ") + systemd_quote(a);

  std::ostringstream u;
  u << "# flowrun service for " << o.workflow_name << ", made by `flowrun service unit`.\n"
    << "# Install: docs/service.md. Secrets go in " << o.environment_file << " (NAME=value lines, mode 600).\n"
    << "[Unit]\n"
    << "Description=flowrun: " << o.workflow_name << "\n"
    << "After=network-online.target\n"
    << "Wants=network-online.target\n"
    << "# Keep restarting however often it fails: a monitor that gives up is worse than a noisy one.\n"
    << "StartLimitIntervalSec=0\n"
    << "\n[Service]\n"
    << "Type=simple\n";
  if (!o.user.empty()) u << "User=" << o.user << "\n";
  u << "WorkingDirectory=" << systemd_quote(o.working_directory) << "\n"
    << "EnvironmentFile=-" << o.environment_file << "\n"
    << "ExecStart=" << exec << "\n"
    << "Restart=always\n"
    << "RestartSec=10\n"
    << "# SIGTERM stops it cleanly: the tick in progress is cancelled (its finally steps run) and\n"
    << "# flowrun exits 0; a database transaction it had open is rolled back, never half-written.\n"
    << "KillSignal=SIGTERM\n"
    << "TimeoutStopSec=120\n"
    << "\n[Install]\n"
    << "WantedBy=" << (o.user_unit ? "default.target" : "multi-user.target") << "\n";
  return u.str();
}

}  // namespace flowrun
