#pragma once
#include <unistd.h>

#include <cstddef>
#include <fstream>

namespace flowrun::test {

// The resident bytes of this process now, from /proc/self/statm (0 when it cannot be read).
inline size_t process_resident_bytes() {
  std::ifstream in("/proc/self/statm");
  size_t pages = 0, resident = 0;
  if (!(in >> pages >> resident)) return 0;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace flowrun::test
