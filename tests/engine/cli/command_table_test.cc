#include "engine/cli/command_table.h"

#include <catch2/catch.hpp>
#include <set>
#include <sstream>

#include "support/run_cli.h"

using namespace flowrun;
using flowrun::test::run_flowrun;

TEST_CASE("command table: one row per command, each in the overview with its summary", "[cli]") {
  const auto& table = command_table();
  REQUIRE(table.front().name == "run");  // the default: `flowrun FILE`
  std::set<std::string> names;
  const std::string text = overview();
  for (const auto& command : table) {
    INFO(command.name);
    CHECK(names.insert(command.name).second);
    CHECK(static_cast<bool>(command.main));
    CHECK(text.find("  flowrun " + command.usage) != std::string::npos);
    // The summary's first words start its overview entry (the first letter lower-cased).
    const std::string words = command.summary.substr(1, 20);
    CHECK(text.find(words) != std::string::npos);
  }
  CHECK(names == std::set<std::string>{"run", "validate", "steps", "graph", "runs", "show", "serve", "resume", "cancel",
                                       "notify", "service"});
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("  flowrun FILE", 0) != 0) CHECK(line.size() <= 100);
}

TEST_CASE("command table: a row's summary heads its --help, and its name dispatches", "[cli][e2e]") {
  for (const auto& command : command_table()) {
    INFO(command.name);
    const auto help = run_flowrun({command.name, "--help"});
    CHECK(help.exit_code == 0);
    CHECK(help.out.rfind(command.summary, 0) == 0);
  }
  const auto resume = run_flowrun({"resume"});
  CHECK(resume.exit_code == 2);
  CHECK(resume.err == "flowrun: run is required\n  hint: flowrun resume --help\n");
}
