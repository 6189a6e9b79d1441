#pragma once
// What /proc says about processes and process groups, for stopping a group safely: a pid or a
// group id may be reused once its processes are gone, and a start time tells the new one apart.
#include <sys/types.h>

#include <string>
#include <vector>

namespace flowrun {

// Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot; "" for a
// process that is gone or a zombie (a zombie has finished; only its exit status is left).
std::string process_start_ticks(pid_t pid);
// True when `pid` is a zombie that started at `start_ticks`: that very process has ended and
// waits to be reaped (by its parent, perhaps this process as a subreaper).
bool is_zombie_of(pid_t pid, const std::string& start_ticks);

struct GroupMember {
  pid_t pid = 0;
  std::string start_ticks;
};

// The processes of group `pgid` that still run (zombies left out), found by scanning /proc.
std::vector<GroupMember> live_group_members(pid_t pgid);

}  // namespace flowrun
