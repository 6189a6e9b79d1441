#pragma once
#include <fstream>
#include <string>

namespace flowrun::test {

// The threads of this process now, from /proc/self/status (-1 when it cannot be read).
inline int process_threads() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  return -1;
}

}  // namespace flowrun::test
