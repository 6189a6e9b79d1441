// flowrun: the command-line front end. The commands, their options and help live in one table
// (engine/cli/command_table.cc); exit codes: 0 succeeded, 1 failed, 2 bad usage or an invalid
// workflow, 3 partial, 130 stopped by a signal.
#include <signal.h>

#include "engine/cli/command_table.h"

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);  // a child that closes its stdin must not kill us
  return flowrun::run_command_line(argc, argv);
}
