#include "support/run_cli.h"

#include <signal.h>

#include <boost/process.hpp>
#include <sstream>
#include <thread>

namespace bp = boost::process;

namespace flowrun::test {

CliResult run_flowrun(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
                      std::optional<std::chrono::milliseconds> interrupt_after) {
  bp::environment e;
  for (const auto& entry : boost::this_process::environment()) e[entry.get_name()] = entry.to_string();
  for (const auto& [k, v] : env) e[k] = v;
  bp::ipstream out, err;
  bp::child child(FLOWRUN_BINARY, bp::args(args), bp::env(e), bp::start_dir(FLOWRUN_SOURCE_DIR), bp::std_out > out,
                  bp::std_err > err, bp::std_in < bp::null);
  CliResult result;
  std::thread out_reader([&] {
    std::ostringstream ss;
    ss << out.rdbuf();
    result.out = ss.str();
  });
  std::thread err_reader([&] {
    std::ostringstream ss;
    ss << err.rdbuf();
    result.err = ss.str();
  });
  if (interrupt_after) {
    std::this_thread::sleep_for(*interrupt_after);
    ::kill(child.id(), SIGINT);
  }
  child.wait();
  out_reader.join();
  err_reader.join();
  result.exit_code = child.exit_code();
  return result;
}

}  // namespace flowrun::test
