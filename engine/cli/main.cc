// flowrun: the command-line front end. The commands, their options and help live in one table
// (engine/cli/command_table.cc); exit codes: 0 succeeded, 1 failed, 2 bad usage or an invalid
// workflow, 3 partial, 130 stopped by a signal.
#include <malloc.h>
#include <signal.h>

#include "engine/cli/command_table.h"

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);  // a child that closes its stdin must not kill us
  // Lua's garbage (a chunk of batch rows, a poll's tables) made glibc shrink the heap by brk and
  // grow it again, touching fresh zeroed pages: 14,000 page faults, 9% of an ingest's CPU. A 1 MiB
  // pad at the top keeps that churn inside one megabyte; blocks of 1 MiB and more are still mapped
  // on their own and returned whole when freed.
  mallopt(M_TOP_PAD, 1 << 20);
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  return flowrun::run_command_line(argc, argv);
}
