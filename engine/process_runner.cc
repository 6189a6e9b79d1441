#include "engine/process_runner.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/process.hpp>
#include <boost/process/extend.hpp>
#include <chrono>
#include <thread>

#include "engine/step_error.h"

namespace bp = boost::process;

namespace flowrun {
namespace {

// Runs in the child between fork and exec: a process group of its own, so that a time-out or
// a cancel can stop the whole tree a shell may have started.
struct NewProcessGroup : bp::extend::handler {
  template <typename Executor>
  void on_exec_setup(Executor&) const {
    ::setpgid(0, 0);
  }
};

constexpr auto kGracePeriod = std::chrono::seconds(2);

void read_stream(bp::ipstream& stream, std::string& captured, size_t limit, bool is_stderr,
                 const std::function<void(std::string_view, bool)>& on_line) {
  std::string line;
  while (std::getline(stream, line)) {
    if (captured.size() < limit) captured.append(line).append("\n");
    if (on_line) on_line(line, is_stderr);
  }
}

void stop_group(bp::child& child) {
  pid_t pgid = child.id();
  ::kill(-pgid, SIGTERM);
  auto until = std::chrono::steady_clock::now() + kGracePeriod;
  std::error_code ec;
  while (child.running(ec) && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ::kill(-pgid, SIGKILL);
}

}  // namespace

ProcessResult SystemProcessRunner::run(const ProcessSpec& spec, const CancelToken& cancel) {
  if (spec.argv.empty()) throw StepError::permanent("no command given (argv is empty)");
  if (cancel.cancelled()) throw StepError::cancelled("cancelled before the process started");

  boost::filesystem::path exe = spec.argv[0];
  if (spec.argv[0].find('/') == std::string::npos) {
    exe = bp::search_path(spec.argv[0]);
    if (exe.empty()) throw StepError::permanent("command not found: " + spec.argv[0]);
  }
  std::vector<std::string> args(spec.argv.begin() + 1, spec.argv.end());

  bp::environment env;
  if (spec.inherit_env)
    for (const auto& entry : boost::this_process::environment()) env[entry.get_name()] = entry.to_string();
  for (const auto& [k, v] : spec.env) env[k] = v;

  bp::ipstream out_stream, err_stream;
  bp::opstream in_stream;
  std::error_code launch_error;
  bp::child child;
  try {
    auto start_dir = spec.cwd.empty() ? boost::filesystem::current_path() : boost::filesystem::path(spec.cwd);
    if (spec.stdin_data) {
      child = bp::child(exe, bp::args(args), bp::env(env), bp::start_dir(start_dir), bp::std_out > out_stream,
                        bp::std_err > err_stream, bp::std_in < in_stream, NewProcessGroup{}, launch_error);
    } else {
      child = bp::child(exe, bp::args(args), bp::env(env), bp::start_dir(start_dir), bp::std_out > out_stream,
                        bp::std_err > err_stream, bp::std_in < bp::null, NewProcessGroup{}, launch_error);
    }
  } catch (const std::exception& e) {
    throw StepError::permanent("cannot start " + spec.argv[0] + ": " + e.what());
  }
  if (launch_error) throw StepError::permanent("cannot start " + spec.argv[0] + ": " + launch_error.message());

  ProcessResult result;
  std::thread out_reader(read_stream, std::ref(out_stream), std::ref(result.out), spec.capture_limit, false,
                         std::cref(spec.on_line));
  std::thread err_reader(read_stream, std::ref(err_stream), std::ref(result.err), spec.capture_limit, true,
                         std::cref(spec.on_line));
  std::thread writer;
  if (spec.stdin_data) {
    writer = std::thread([&] {
      in_stream << *spec.stdin_data;
      in_stream.flush();
      in_stream.pipe().close();
    });
  }

  auto started = std::chrono::steady_clock::now();
  bool cancelled = false;
  auto poll = std::chrono::milliseconds(1);
  std::error_code ec;
  while (child.running(ec)) {
    if (cancel.cancelled()) {
      cancelled = true;
      stop_group(child);
      break;
    }
    if (spec.timeout && std::chrono::steady_clock::now() - started >= *spec.timeout) {
      result.timed_out = true;
      stop_group(child);
      break;
    }
    cancel.wait_for(poll);
    poll = std::min(poll * 2, std::chrono::milliseconds(25));
  }
  child.wait(ec);
  if (writer.joinable()) writer.join();
  out_reader.join();
  err_reader.join();

  int status = child.native_exit_code();
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
    result.exit_code = -1;
  }
  if (cancelled) throw StepError::cancelled(spec.argv[0] + " stopped: " + cancel.reason());
  return result;
}

}  // namespace flowrun
