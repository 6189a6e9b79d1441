#include "engine/io/process_group.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>

namespace flowrun {
namespace {

// The fields of /proc/PID/stat after the command name, which may hold spaces and parentheses:
// fields[0] is field 3 (the state).
std::vector<std::string> stat_fields(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return {};
  std::string stat(buf, static_cast<size_t>(n));
  auto close = stat.rfind(')');
  if (close == std::string::npos || close + 2 > stat.size()) return {};
  std::istringstream rest(stat.substr(close + 2));
  std::vector<std::string> fields;
  for (std::string f; fields.size() < 20 && rest >> f;) fields.push_back(f);
  return fields;
}

bool finished(const std::vector<std::string>& f) { return f.size() < 20 || f[0] == "Z" || f[0] == "X"; }

}  // namespace

std::string process_start_ticks(pid_t pid) {
  auto f = stat_fields(pid);
  return finished(f) ? "" : f[19];
}

bool is_zombie_of(pid_t pid, const std::string& start_ticks) {
  auto f = stat_fields(pid);
  return f.size() >= 20 && f[0] == "Z" && f[19] == start_ticks;
}

std::vector<GroupMember> live_group_members(pid_t pgid) {
  std::vector<GroupMember> members;
  DIR* proc = ::opendir("/proc");
  if (!proc) return members;
  while (dirent* e = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    auto f = stat_fields(static_cast<pid_t>(pid));
    if (finished(f) || std::atol(f[2].c_str()) != pgid) continue;  // f[2] is field 5, the group
    members.push_back({static_cast<pid_t>(pid), f[19]});
  }
  ::closedir(proc);
  return members;
}

}  // namespace flowrun
