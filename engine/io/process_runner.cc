#include "engine/io/process_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>

#include "engine/io/fiber_scheduler.h"
#include "engine/io/output_capture.h"
#include "engine/io/process_group.h"
#include "engine/io/step_error.h"

extern char** environ;

namespace flowrun {
namespace {

using Clock = std::chrono::steady_clock;

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept {
    reset(o.release());
    return *this;
  }
  ~Fd() { reset(); }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

struct Pipe {
  Fd read, write;
};

Pipe make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw StepError::transient(std::string("cannot create a pipe: ") + std::strerror(errno));
  return {Fd(fds[0]), Fd(fds[1])};
}

// What the child reports through its exec-error pipe when it cannot start the program.
struct LaunchFailure {
  int stage = 0;  // 1: chdir, 2: execve
  int error = 0;
};

// Everything the child needs, prepared before fork(): after it only async-signal-safe calls.
struct Launch {
  std::string exe;
  std::vector<std::string> args, env;
  std::vector<char*> argv, envp;
  std::string cwd;
};

std::string lookup_path(const std::string& name, const std::string& path) {
  size_t start = 0;
  for (;;) {
    size_t end = path.find(':', start);
    std::string dir = path.substr(start, end == std::string::npos ? std::string::npos : end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0)
      return candidate;
    if (end == std::string::npos) return "";
    start = end + 1;
  }
}

Launch prepare(const ProcessSpec& spec) {
  Launch l;
  std::map<std::string, std::string> env;
  if (spec.inherit_env) {
    for (char** e = environ; *e; ++e) {
      std::string kv = *e;
      auto eq = kv.find('=');
      if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
  for (const auto& [k, v] : spec.env) env[k] = v;
  for (const auto& [k, v] : env) l.env.push_back(k + "=" + v);
  l.exe = spec.argv[0];
  if (l.exe.find('/') == std::string::npos) {
    auto path = env.find("PATH");
    l.exe = lookup_path(spec.argv[0], path != env.end() ? path->second : "/usr/local/bin:/usr/bin:/bin");
    if (l.exe.empty()) throw StepError::permanent("command not found: " + spec.argv[0]);
  }
  l.args = spec.argv;
  for (auto& a : l.args) l.argv.push_back(a.data());
  l.argv.push_back(nullptr);
  for (auto& e : l.env) l.envp.push_back(e.data());
  l.envp.push_back(nullptr);
  l.cwd = spec.cwd;
  return l;
}

// Closes every descriptor from 3 up except `keep_a` < `keep_b`, so the child holds no pipe of
// another process being started at the same time while it waits for its go.
void close_all_but(int keep_a, int keep_b) {
  auto close_range = [](unsigned from, unsigned to) {
    if (from > to) return;
#ifdef SYS_close_range
    if (::syscall(SYS_close_range, from, to, 0u) == 0) return;
#endif
    for (unsigned fd = from; fd <= to && fd < 65536; ++fd) ::close(static_cast<int>(fd));
  };
  close_range(3, static_cast<unsigned>(keep_a) - 1);
  close_range(static_cast<unsigned>(keep_a) + 1, static_cast<unsigned>(keep_b) - 1);
  close_range(static_cast<unsigned>(keep_b) + 1, ~0u);
}

[[noreturn]] void child_main(const Launch& l, int in_fd, int out_fd, int err_fd, int go_fd, int report_fd) {
  ::setpgid(0, 0);
  // flowrun ignores SIGPIPE and blocks SIGINT/SIGTERM for its signal thread; a program must not
  // inherit either, or it never sees SIGTERM and pipelines print "Broken pipe".
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::dup2(in_fd, 0);
  ::dup2(out_fd, 1);
  ::dup2(err_fd, 2);
  close_all_but(go_fd < report_fd ? go_fd : report_fd, go_fd < report_fd ? report_fd : go_fd);
  LaunchFailure failure;
  if (!l.cwd.empty() && ::chdir(l.cwd.c_str()) != 0) {
    failure = {1, errno};
  } else {
    char go = 0;
    ssize_t n;
    while ((n = ::read(go_fd, &go, 1)) < 0 && errno == EINTR) {
    }
    if (n != 1) ::_exit(127);  // the parent gave up on us
    ::execve(l.exe.c_str(), l.argv.data(), l.envp.data());
    failure = {2, errno};
  }
  (void)!::write(report_fd, &failure, sizeof failure);
  ::_exit(127);
}

// Writes without being killed by SIGPIPE when the program closed its stdin (flowrun ignores
// SIGPIPE, a test binary may not).
ssize_t write_quietly(int fd, const char* data, size_t size) {
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  ssize_t n = ::write(fd, data, size);
  int saved = errno;
  if (n < 0 && saved == EPIPE) {
    timespec zero{};
    ::sigtimedwait(&pipe_set, nullptr, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = saved;
  return n;
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Reads what is there now (at most `max_reads` chunks); false at end of file or on an error.
bool read_available(int fd, OutputCapture& capture, int max_reads) {
  static thread_local char buf[64 << 10];
  for (int i = 0; i < max_reads; ++i) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      capture.feed(std::string_view(buf, static_cast<size_t>(n)));
      continue;
    }
    if (n < 0 && (errno == EINTR)) continue;
    return n < 0 && errno == EAGAIN;
  }
  return true;
}

// Orphans of a stopped group must come back to flowrun to be reaped by waitpid(-pgid): without
// this they go to init, which may be absent in a container, and stay zombies in the group.
void become_subreaper() {
  static std::once_flag once;
  std::call_once(once, [] { ::prctl(PR_SET_CHILD_SUBREAPER, 1); });
}

// One started process group, from the go to the last member.
class Supervision {
 public:
  Supervision(const ProcessSpec& spec, const CancelToken& cancel, pid_t pgid, Fd out, Fd err, Fd in)
      : spec_(spec),
        cancel_(cancel),
        pgid_(pgid),
        out_(std::move(out)),
        err_(std::move(err)),
        in_(std::move(in)),
        out_cap_(spec.capture_limit, false, &spec.on_line),
        err_cap_(spec.capture_limit, true, &spec.on_line) {
    set_nonblocking(out_.get());
    set_nonblocking(err_.get());
    if (in_) set_nonblocking(in_.get());
#ifdef SYS_pidfd_open
    pidfd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, pgid, 0)));
#endif
  }

  // Returns when the group is empty; `cancelled` tells whether it was stopped by cancel.
  ProcessResult run(bool& cancelled) {
    ProcessResult result;
    const auto started = Clock::now();
    auto tick = std::chrono::milliseconds(1);
    for (;;) {
      wait_for_events(tick);
      tick = std::min(tick * 2, std::chrono::milliseconds(25));
      pump();
      if (group_gone()) break;
      if (leader_reaped_ && !stopping_) result.outlived = true;  // not the moments a stop takes
      const auto now = Clock::now();
      if (!stopping_ && cancel_.cancelled()) {
        cancelled = true;
        stop(now);
      } else if (!stopping_ && spec_.timeout && now - started >= *spec_.timeout) {
        result.timed_out = true;
        stop(now);
      } else if (stopping_ && !killed_ && now >= kill_at_) {
        ::kill(-pgid_, SIGKILL);
        killed_ = true;
      }
    }
    // The group is gone: take what is already in the pipes, but wait for no one else holding them.
    if (out_) read_available(out_.get(), out_cap_, 1 << 20);
    if (err_) read_available(err_.get(), err_cap_, 1 << 20);
    out_cap_.finish();
    err_cap_.finish();
    if (leader_lost_) {
      result.exit_code = -1;
    } else if (WIFEXITED(leader_status_)) {
      result.exit_code = WEXITSTATUS(leader_status_);
    } else if (WIFSIGNALED(leader_status_)) {
      result.signal = WTERMSIG(leader_status_);
    }
    result.out_dropped = out_cap_.dropped();
    result.err_dropped = err_cap_.dropped();
    result.out = out_cap_.take_captured();
    result.err = err_cap_.take_captured();
    return result;
  }

  // For an exception on the way: no member may outlive it.
  void kill_now() {
    ::kill(-pgid_, SIGKILL);
    while (!group_gone()) ::usleep(5000);
  }

 private:
  void stop(Clock::time_point now) {
    ::kill(-pgid_, SIGTERM);
    ::kill(-pgid_, SIGCONT);  // a stopped process cannot act on SIGTERM
    stopping_ = true;
    kill_at_ = now + spec_.kill_grace;
  }

  void wait_for_events(std::chrono::milliseconds tick) {
    pollfd fds[4];
    nfds_t n = 0;
    if (out_) fds[n++] = {out_.get(), POLLIN, 0};
    if (err_) fds[n++] = {err_.get(), POLLIN, 0};
    if (in_) fds[n++] = {in_.get(), POLLOUT, 0};
    if (pidfd_ && !leader_reaped_) fds[n++] = {pidfd_.get(), POLLIN, 0};
    auto wait = tick;
    if (stopping_ && !killed_)
      wait = std::max(std::chrono::milliseconds(0),
                      std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(kill_at_ - Clock::now())));
    ::poll(fds, n, static_cast<int>(wait.count()));
  }

  // Moves output in, input out, and reaps what has ended.
  void pump() {
    if (out_ && !read_available(out_.get(), out_cap_, 16)) out_.reset();
    if (err_ && !read_available(err_.get(), err_cap_, 16)) err_.reset();
    if (in_) {
      const std::string& data = *spec_.stdin_data;
      while (written_ < data.size()) {
        ssize_t n =
            write_quietly(in_.get(), data.data() + written_, std::min<size_t>(data.size() - written_, 64 << 10));
        if (n > 0) {
          written_ += static_cast<size_t>(n);
        } else if (n < 0 && errno == EINTR) {
          continue;
        } else {
          if (n < 0 && errno == EAGAIN) break;
          written_ = data.size();  // the program closed its stdin: nothing more to give
        }
      }
      if (written_ >= data.size()) in_.reset();
    }
    reap();
  }

  // Empty once the leader is reaped and no member is left; zombies this process cannot reap
  // (a member that left flowrun's tree) count as gone, found by a /proc scan at most 4 times a second.
  bool group_gone() {
    if (!leader_reaped_) {
      reap();
      if (!leader_reaped_ && !no_children_) return false;
      leader_lost_ = !leader_reaped_;  // reaped by someone else: its exit status is unknown
      leader_reaped_ = true;
    }
    if (::kill(-pgid_, 0) < 0 && errno == ESRCH) return true;
    if (!no_children_) return false;
    const auto now = Clock::now();
    if (now - last_scan_ < std::chrono::milliseconds(250)) return false;
    last_scan_ = now;
    return live_group_members(pgid_).empty();
  }

  // Collects the exit of every member that is flowrun's child (the subreaper makes orphans so).
  void reap() {
    int status = 0;
    pid_t w;
    while ((w = ::waitpid(-pgid_, &status, WNOHANG)) > 0) {
      if (w == pgid_) {
        leader_status_ = status;
        leader_reaped_ = true;
      }
    }
    no_children_ = w < 0 && errno == ECHILD;
  }

  const ProcessSpec& spec_;
  const CancelToken& cancel_;
  pid_t pgid_;
  Fd out_, err_, in_, pidfd_;
  OutputCapture out_cap_, err_cap_;
  size_t written_ = 0;
  bool leader_reaped_ = false;
  int leader_status_ = 0;
  bool leader_lost_ = false;
  bool no_children_ = false;
  bool stopping_ = false;
  bool killed_ = false;
  Clock::time_point kill_at_{};
  Clock::time_point last_scan_{};
};

// Runs the process to its end on this thread (see ProcessRunner::run).
ProcessResult run_here(const ProcessSpec& spec, const CancelToken& cancel) {
  if (spec.argv.empty()) throw StepError::permanent("no command given (argv is empty)");
  if (cancel.cancelled()) throw StepError::cancelled("cancelled before the process started");
  become_subreaper();
  const Launch launch = prepare(spec);

  Pipe out = make_pipe(), err = make_pipe(), go = make_pipe(), report = make_pipe();
  Pipe in;
  if (spec.stdin_data) {
    in = make_pipe();
  } else {
    in.read.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!in.read) throw StepError::transient(std::string("cannot open /dev/null: ") + std::strerror(errno));
  }

  const pid_t pid = ::fork();
  if (pid < 0)
    throw StepError::transient(std::string("cannot start " + spec.argv[0] + ": fork: ") + std::strerror(errno));
  if (pid == 0) child_main(launch, in.read.get(), out.write.get(), err.write.get(), go.read.get(), report.write.get());

  ::setpgid(pid, pid);  // also here, so that the group exists whichever of the two runs first
  in.read.reset();
  out.write.reset();
  err.write.reset();
  go.read.reset();
  report.write.reset();
  auto abandon = [pid] {
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  };

  const std::string ticks = process_start_ticks(pid);
  if (spec.on_started) {
    try {
      spec.on_started(pid, ticks);
    } catch (...) {
      abandon();
      throw;
    }
  }
  auto ended = [&spec, pid] {
    if (spec.on_ended) spec.on_ended(pid);
  };
  char one = 1;
  (void)!::write(go.write.get(), &one, 1);
  go.write.reset();

  LaunchFailure failure;
  ssize_t n;
  while ((n = ::read(report.read.get(), &failure, sizeof failure)) < 0 && errno == EINTR) {
  }
  if (n == static_cast<ssize_t>(sizeof failure)) {
    abandon();
    ended();
    if (failure.stage == 1)
      throw StepError::permanent("cannot start " + spec.argv[0] + ": cannot change to " + spec.cwd + ": " +
                                 std::strerror(failure.error));
    throw StepError::permanent("cannot start " + spec.argv[0] + ": " + std::strerror(failure.error));
  }

  Supervision supervision(spec, cancel, pid, std::move(out.read), std::move(err.read), std::move(in.write));
  bool cancelled = false;
  ProcessResult result;
  try {
    result = supervision.run(cancelled);
  } catch (...) {
    supervision.kill_now();
    ended();
    throw;
  }
  ended();
  if (cancelled) throw StepError::cancelled(spec.argv[0] + " stopped: " + cancel.reason());
  return result;
}

}  // namespace

// Waiting for a process blocks (pipes, waitpid): a fiber hands it to a pool thread, and spec's
// callbacks run there.
ProcessResult SystemProcessRunner::run(const ProcessSpec& spec, const CancelToken& cancel) {
  ProcessResult result;
  run_blocking([&] { result = run_here(spec, cancel); });
  return result;
}

}  // namespace flowrun
