#pragma once
#include <string>

namespace flowrun {

// Whether `host` (a name or an address, IPv6 with or without brackets) means this machine only:
// "localhost", 127.0.0.0/8, ::1. The SMTP channel demands TLS off loopback; `flowrun serve`
// demands a token off loopback.
bool is_loopback_host(const std::string& host);

}  // namespace flowrun
