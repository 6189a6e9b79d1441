#pragma once
// The CLI's command table: one row per command, and the only place a command is named. The rows
// drive dispatch (`flowrun NAME ...`), each command's --help (its summary heads it) and the
// overview that `flowrun --help` prints.
#include <functional>
#include <string>
#include <vector>

namespace flowrun {

struct Command {
  std::string name;     // the first argument; the default command's row comes first
  std::string usage;    // what follows `flowrun` in the overview: "validate FILE..."
  std::string summary;  // one sentence: the overview's line and the head of --help
  // Parses the command's arguments (argv[0] is the command's name) and runs it; the exit code.
  std::function<int(int argc, char** argv)> main;
};

// Every command, the default one (run) first.
const std::vector<Command>& command_table();

// `flowrun --help`: a usage line per command, then how runs end, detach and exit.
std::string overview();

// The whole command line: dispatches on argv[1] through the table (a file name selects the
// default command), handles --help and --version, and returns the exit code.
int run_command_line(int argc, char** argv);

}  // namespace flowrun
