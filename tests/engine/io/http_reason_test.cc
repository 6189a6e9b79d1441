#include "engine/io/http_reason.h"

#include <catch2/catch.hpp>
#include <string>

using flowrun::error_reason;

TEST_CASE("error_reason: an HTML error page is reduced to its title", "[http_reason]") {
  std::string page =
      "<!DOCTYPE html>\n<html><head>\n<title>404 Not Found</title></head>\n<body><h1>Not Found</h1>"
      "<p>The requested URL was not found on this server.</p>" +
      std::string(5000, 'x') + "</body></html>";
  CHECK(error_reason(page) == "404 Not Found");
  CHECK(error_reason("<html><body><h1>\n  Bad   Gateway\n</h1></body></html>") == "Bad Gateway");
}

TEST_CASE("error_reason: a JSON error is reduced to its message", "[http_reason]") {
  CHECK(error_reason(R"({"type":"error","error":{"type":"not_found_error","message":"batch not found"}})") ==
        "not_found_error: batch not found");
  CHECK(error_reason(R"({"success": false, "msg": "no such instance"})") == "no such instance");
  CHECK(error_reason(R"({"detail": "rate limited"})") == "rate limited");
  CHECK(error_reason(R"({"error": "invalid_api_key"})") == "invalid_api_key");
}

TEST_CASE("error_reason: other text is one line of at most 200 characters", "[http_reason]") {
  CHECK(error_reason("upstream timed out\nwhile reading\n") == "upstream timed out while reading");
  CHECK(error_reason(std::string(1000, 'a')).size() == 203);  // 200 and "..."
  CHECK(error_reason("   ").empty());
  // Nested deeper than the JSON limit: read as text, never a crash.
  CHECK_FALSE(error_reason("{\"a\":" + std::string(100000, '[')).empty());
}
