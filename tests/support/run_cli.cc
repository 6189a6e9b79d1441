#include "support/run_cli.h"

#include <signal.h>

#include <boost/process.hpp>
#include <filesystem>
#include <sstream>
#include <thread>

#include "engine/io/json.h"

namespace bp = boost::process;

namespace flowrun::test {

struct FlowrunProcess::Impl {
  bp::ipstream out, err;
  bp::child child;
  CliResult result;
  std::thread out_reader, err_reader;
  bool waited = false;
};

FlowrunProcess::FlowrunProcess(const std::vector<std::string>& args, const std::map<std::string, std::string>& env)
    : impl_(std::make_unique<Impl>()) {
  bp::environment e;
  for (const auto& entry : boost::this_process::environment()) e[entry.get_name()] = entry.to_string();
  e["FLOWRUN_STATE_DIR"] = (std::filesystem::temp_directory_path() / "flowrun-e2e-state").string();
  for (const auto& [k, v] : env) e[k] = v;
  impl_->child = bp::child(FLOWRUN_BINARY, bp::args(args), bp::env(e), bp::start_dir(FLOWRUN_SOURCE_DIR),
                           bp::std_out > impl_->out, bp::std_err > impl_->err, bp::std_in < bp::null);
  impl_->out_reader = std::thread([this] {
    std::ostringstream ss;
    ss << impl_->out.rdbuf();
    impl_->result.out = ss.str();
  });
  impl_->err_reader = std::thread([this] {
    std::ostringstream ss;
    ss << impl_->err.rdbuf();
    impl_->result.err = ss.str();
  });
}

FlowrunProcess::~FlowrunProcess() {
  if (!impl_->waited) {
    signal(SIGKILL);
    wait();
  }
}

int FlowrunProcess::pid() const { return impl_->child.id(); }

void FlowrunProcess::signal(int sig) { ::kill(impl_->child.id(), sig); }

CliResult FlowrunProcess::wait() {
  if (impl_->waited) return impl_->result;
  impl_->child.wait();
  impl_->out_reader.join();
  impl_->err_reader.join();
  int status = impl_->child.native_exit_code();
  impl_->result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  impl_->waited = true;
  return impl_->result;
}

CliResult run_flowrun(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
                      std::optional<std::chrono::milliseconds> interrupt_after) {
  FlowrunProcess p(args, env);
  if (interrupt_after) {
    std::this_thread::sleep_for(*interrupt_after);
    p.signal(SIGINT);
  }
  return p.wait();
}

namespace {
std::string newest_run_field(const std::string& state_dir, const std::string& field) {
  CliResult r = run_flowrun({"runs", "--json", "--state-dir", state_dir});
  Json runs = Json::parse(r.out, nullptr, false);
  if (r.exit_code != 0 || !runs.is_array() || runs.empty()) return {};
  return runs[0].value(field, "");
}
}  // namespace

std::string newest_run_id(const std::string& state_dir) { return newest_run_field(state_dir, "id"); }
std::string newest_run_status(const std::string& state_dir) { return newest_run_field(state_dir, "status"); }

bool wait_for_file(const std::string& path, std::chrono::milliseconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (std::filesystem::exists(path)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace flowrun::test
