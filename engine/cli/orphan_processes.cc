#include "engine/cli/orphan_processes.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include "engine/io/logging.h"
#include "engine/io/process_group.h"
#include "engine/journal/journal.h"

namespace flowrun {
namespace {

unsigned long long ticks_of(const std::string& text) { return std::strtoull(text.c_str(), nullptr, 10); }

// The running members of a recorded group that are provably the recorded group's: with the
// leader alive, its start time must match; with the leader gone, every member must have started
// after it (a pgid is reused only once all of its members are gone, and then by a newer leader).
std::vector<GroupMember> recorded_members(const ProcessGroupRow& g) {
  const auto pgid = static_cast<pid_t>(g.pgid);
  if (g.pgid <= 1 || g.start_ticks.empty()) return {};
  std::string leader = process_start_ticks(pgid);
  if (!leader.empty() && leader != g.start_ticks) return {};
  auto members = live_group_members(pgid);
  for (const auto& m : members)
    if (ticks_of(m.start_ticks) < ticks_of(g.start_ticks)) return {};
  return members;
}

bool any_running(const std::vector<ProcessGroupRow>& groups) {
  for (const auto& g : groups)
    if (!recorded_members(g).empty()) return true;
  return false;
}

void signal_all(const std::vector<ProcessGroupRow>& groups, int sig) {
  for (const auto& g : groups)
    if (!recorded_members(g).empty()) ::kill(-static_cast<pid_t>(g.pgid), sig);
}

// Waits up to `limit` for every group to end; true when they did.
bool wait_gone(const std::vector<ProcessGroupRow>& groups, Duration limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (any_running(groups)) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

}  // namespace

int stop_orphaned_process_groups(Journal& journal, const std::string& run_id, Duration grace, const StepLog& log) {
  std::vector<ProcessGroupRow> running;
  for (const auto& g : journal.process_groups(run_id)) {
    auto members = recorded_members(g);
    if (members.empty()) {
      journal.clear_process_group(run_id, g.pgid);
      continue;
    }
    log.warn("step " + g.path + " left process group " + std::to_string(g.pgid) + " (" +
             std::to_string(members.size()) + " process(es)) running when flowrun stopped; stopping it");
    running.push_back(g);
  }
  if (running.empty()) return 0;
  signal_all(running, SIGTERM);
  signal_all(running, SIGCONT);  // a stopped process cannot act on SIGTERM
  if (!wait_gone(running, grace)) {
    log.warn("process groups still running " + format_duration(grace) + " after SIGTERM; sending SIGKILL");
    signal_all(running, SIGKILL);
    wait_gone(running, std::chrono::seconds(5));
  }
  for (const auto& g : running) {
    if (!recorded_members(g).empty()) {
      log.error("process group " + std::to_string(g.pgid) + " of step " + g.path + " survived SIGKILL; left recorded");
      continue;
    }
    journal.clear_process_group(run_id, g.pgid);
  }
  return static_cast<int>(running.size());
}

}  // namespace flowrun
