#include "engine/io/host_address.h"

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <cctype>

namespace flowrun {

bool is_loopback_host(const std::string& raw) {
  std::string host = raw;
  std::transform(host.begin(), host.end(), host.begin(), [](unsigned char c) { return std::tolower(c); });
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost") return true;
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(host, ec);
  return !ec && address.is_loopback();
}

}  // namespace flowrun
