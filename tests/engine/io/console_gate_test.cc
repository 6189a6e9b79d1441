#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "engine/io/logging.h"

using namespace flowrun;

TEST_CASE("a console gate sees every console line and decides what is printed", "[logging][terminal]") {
  Redactor redactor;
  redactor.add_secret("hunter2");
  LogOptions options;
  options.console_level = LogLevel::kInfo;
  options.capture = true;
  LogHub hub(options, redactor);
  std::vector<std::string> seen;
  set_console_gate([&](const ConsoleLine& line, const std::function<void(std::string_view)>& print) {
    seen.push_back(std::string(line.logger) + "|" + std::to_string(static_cast<int>(line.level)) + "|" +
                   std::string(line.message));
    (void)print;  // dropped: nothing on stderr
  });
  hub.logger("videos[1].result").warn("the password is hunter2");
  hub.logger("videos").debug("below the console level: no console line");
  set_console_gate(nullptr);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0] == "videos[1].result|2|the password is ***");
  // The other sinks are not gated: the capture has both lines.
  CHECK(hub.captured().size() == 2);
}
