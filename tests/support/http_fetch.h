#pragma once
#include <map>
#include <string>

namespace flowrun::test {

struct Fetched {
  long status = 0;  // 0: no answer (refused, timed out)
  std::string body;
  std::string headers;  // the raw header block
};

// One HTTP request with libcurl (no redirects followed, 10 s limit).
Fetched fetch(const std::string& method, const std::string& url, const std::map<std::string, std::string>& headers = {},
              const std::string& body = "");

// A TCP port on 127.0.0.1 free a moment ago (bound to port 0, then closed).
unsigned short free_port();

}  // namespace flowrun::test
