#include "engine/serve/journal_source.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <thread>

#include "engine/io/run_state.h"
#include "engine/journal/journal.h"
#include "engine/journal/run_view.h"
#include "engine/metrics/journal_metrics.h"

extern char** environ;

namespace flowrun {
namespace {

// Whether a live process holds the run's lease (the same test try_acquire makes).
bool has_live_owner(const RunRow& run) {
  if (run.owner_pid == 0 || run.lease_until_ms <= wall_clock_ms()) return false;
  if (run.owner_host == this_host() && ::kill(static_cast<pid_t>(run.owner_pid), 0) != 0 && errno == ESRCH)
    return false;
  return true;
}

// Starts `argv` in a session of its own with stdin and stdout on /dev/null and stderr appended to
// `log_file`; a thread reaps it. False when it could not start.
bool spawn_detached(const std::vector<std::string>& argv, const std::string& log_file) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0].c_str(), &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return false;
  std::thread([pid] {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }).detach();
  return true;
}

}  // namespace

JournalSource::JournalSource(Journal& journal, std::string state_dir, std::string flowrun_binary)
    : journal_(journal),
      state_dir_(std::move(state_dir)),
      flowrun_binary_(std::move(flowrun_binary)),
      requests_(journal.path()) {}

Json JournalSource::overview() { return runs_overview(journal_, 50, wall_clock_ms()); }

Json JournalSource::run(const std::string& run_id) { return run_view(journal_, run_id, wall_clock_ms()); }

Json JournalSource::log(const std::string& run_id, const std::string& path) { return log_tail(journal_, run_id, path); }

CancelAnswer JournalSource::cancel(const std::string& run_id) {
  try {
    const auto run = journal_.run(run_id);
    if (!run) return CancelAnswer::kNotFound;
    const auto state = parse_run_state(run->status);
    if (state == RunState::kSucceeded || state == RunState::kCancelled || state == RunState::kPartial)
      return CancelAnswer::kEnded;
    requests_.request(run_id, wall_clock_ms(), "live view");
    if (has_live_owner(*run)) return CancelAnswer::kRequested;
    // Detached, killed or failed with finally steps owed: `flowrun cancel` runs them.
    const std::string log_file = (std::filesystem::path(state_dir_) / "serve-cancel.log").string();
    return spawn_detached({flowrun_binary_, "cancel", run_id, "--state-dir", state_dir_, "-q"}, log_file)
               ? CancelAnswer::kStarted
               : CancelAnswer::kFailed;
  } catch (const std::exception&) {
    return CancelAnswer::kFailed;
  }
}

std::optional<std::string> JournalSource::metrics() { return journal_metrics(journal_); }

std::optional<std::string> journal_metrics(Journal& journal) {
  // The journal's counters, and this process's own (polls, step durations) when it runs workflows
  // too (`flowrun FILE --serve`); a standalone `flowrun serve` has none of those.
  return metrics_exposition(journal, process_metrics_registry().get(), wall_clock_ms());
}

std::string this_executable() {
  std::error_code ec;
  auto path = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("flowrun") : path.string();
}

}  // namespace flowrun
