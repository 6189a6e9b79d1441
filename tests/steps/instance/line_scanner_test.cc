// The line scanner on its own: lines in, what wait-for-marker would decide out (the marker,
// fail_on with its context, captures, progress bars, the prefilter), with no source or step.
#include "steps/instance/line_scanner.h"

#include <catch2/catch.hpp>
#include <memory>

#include "engine/io/logging.h"
#include "engine/io/redactor.h"
#include "engine/io/step_error.h"

using namespace flowrun;
using Lines = std::vector<std::string>;

namespace {

struct Scan {
  Redactor redactor;
  std::unique_ptr<LogHub> hub;
  std::optional<LineScanner> scanner;
  Lines shown;

  explicit Scan(const Json& with, int context_lines = 20) {
    LogOptions options;
    options.console = false;
    options.capture = true;
    hub = std::make_unique<LogHub>(options, redactor);
    scanner.emplace(ScanRules::from(with), context_lines);
  }
  // Scans `lines` as one read does: stops where the scanner says so; returns how many it took.
  size_t read(const Lines& lines) {
    const StepLog log = hub->logger("w");
    auto show = [&](std::string_view line) { shown.emplace_back(line); };
    size_t taken = 0;
    for (const auto& line : lines) {
      ++taken;
      if (!scanner->scan(line, log, show)) break;
    }
    return taken;
  }
  // What was logged, as "LEVEL message" ("HH:MM:SS LEVEL [w] message" without time and name).
  Lines logged() const {
    Lines out;
    for (std::string l : hub->captured()) {
      while (!l.empty() && (l.back() == '\n' || l.back() == '\r')) l.pop_back();
      l = l.substr(l.find(' ') + 1);
      if (auto at = l.find("[w] "); at != std::string::npos) l.erase(at, 4);
      out.push_back(l);
    }
    return out;
  }
};

}  // namespace

TEST_CASE("line scanner: the first marker line is kept, lines after it still give captures", "[steps][scanner]") {
  Scan s(Json::parse(R"J({"marker": "DONE", "capture": {"url": {"pattern": "url=(\\S+)", "required": false}}})J"));
  s.read({"working", "url=a", "DONE 1", "url=b", "DONE 2"});
  CHECK(s.scanner->marker_seen());
  CHECK(s.scanner->marker_line() == "DONE 1");
  CHECK(s.scanner->captured() == Json{{"url", "b"}});
  CHECK(s.shown == Lines{"working", "url=a", "DONE 1", "url=b", "DONE 2"});
  CHECK_FALSE(s.scanner->failure());
  CHECK(s.logged() == Lines{"DEBUG captured url = a", "DEBUG captured url = b"});
}

TEST_CASE("line scanner: a marker regex, and a required capture never seen is named", "[steps][scanner]") {
  Scan s(Json::parse(R"J({"marker": {"regex": "^ALL (DONE|OK)$"}, "capture": {"frames": "frames=(\\d+)"}})J"));
  s.read({"ALL DONE now", "ALL OK"});
  CHECK(s.scanner->marker_line() == "ALL OK");
  CHECK(s.scanner->missing_capture() == std::optional<std::string>("frames"));
}

TEST_CASE("line scanner: fail_on before the marker keeps the lines around it, a traceback names its error",
          "[steps][scanner]") {
  Scan s(Json::parse(R"J({"marker": "DONE", "fail_on": ["Traceback", {"regex": "^FATAL"}]})J"), 2);
  s.read({"a", "b", "c", "Traceback (most recent call last):", "  File \"x.py\", line 1", "ValueError: bad", "DONE"});
  auto failure = s.scanner->failure();
  REQUIRE(failure);
  CHECK(failure->message == "the log matched fail_on 'Traceback': ValueError: bad");
  CHECK(failure->context ==
        Lines{"b", "c", "Traceback (most recent call last):", "  File \"x.py\", line 1", "ValueError: bad", "DONE"});
  CHECK_FALSE(s.scanner->marker_seen());  // lines after a failure are context only
  CHECK(s.shown.size() == 7);
}

TEST_CASE("line scanner: after the marker fail_on no longer counts", "[steps][scanner]") {
  Scan s(Json::parse(R"J({"marker": "DONE", "fail_on": ["ERROR"]})J"));
  s.read({"DONE", "ERROR afterwards"});
  CHECK(s.scanner->marker_seen());
  CHECK_FALSE(s.scanner->failure());
  CHECK(s.scanner->last_line() == "ERROR afterwards");
}

TEST_CASE("line scanner: a failure keeps at most 200 lines after it, then asks to stop", "[steps][scanner]") {
  Scan s(Json::parse(R"J({"marker": "DONE", "fail_on": ["boom"]})J"), 0);
  Lines lines{"boom"};
  for (int i = 0; i < 500; ++i) lines.push_back("after " + std::to_string(i));
  CHECK(s.read(lines) == 1 + LineScanner::kMaxLinesAfter);
  auto failure = s.scanner->failure();
  REQUIRE(failure);
  CHECK(failure->message == "the log matched fail_on 'boom': boom");
  CHECK(failure->context.size() == 1 + LineScanner::kMaxLinesAfter);
  CHECK(failure->context.back() == "after 199");
}

TEST_CASE("line scanner: progress lines become a bar once per tenth and are not shown themselves", "[steps][scanner]") {
  Scan s(Json::parse(R"J({"marker": "DONE", "progress": "(\\d+)/(\\d+)|(\\d+(?:\\.\\d+)?)%"})J"));
  s.read({"step 1/10", "step 15/100", "42.5%", "not progress", "DONE"});
  CHECK(s.shown == Lines{"not progress", "DONE"});
  CHECK(s.logged() ==
        Lines{"INFO progress [##..................]  10% (1/10)", "INFO progress [########............]  42% (42.5%)"});
  CHECK(s.scanner->progress() == std::optional<double>(42.5));
}

TEST_CASE("line scanner: 0/0 and nan are no progress, and are shown as lines", "[steps][scanner]") {
  Scan s(Json::parse(R"J({"marker": "DONE", "progress": "(\\d+)/(\\d+)|(nan)%"})J"));
  s.read({"step 0/0", "nan%", "step 3/10", "DONE"});
  CHECK(s.shown == Lines{"step 0/0", "nan%", "DONE"});
  CHECK(s.logged() == Lines{"INFO progress [######..............]  30% (3/10)"});
  CHECK(s.scanner->progress() == std::optional<double>(30.0));
}

TEST_CASE("line scanner: the prefilter rules out runs without the marker or a fail_on text", "[steps][scanner]") {
  Scan plain(Json::parse(R"J({"marker": "DONE", "fail_on": ["boom"]})J"));
  auto may_matter = plain.scanner->prefilter();
  REQUIRE(may_matter);
  CHECK_FALSE(may_matter("a\nb\nc\n"));
  CHECK(may_matter("a\nall DONE\n"));
  CHECK(may_matter("x boom y\n"));
  // Whatever needs every line turns the prefilter off.
  CHECK_FALSE(Scan(Json::parse(R"J({"marker": {"regex": "D.NE"}})J")).scanner->prefilter());
  CHECK_FALSE(Scan(Json::parse(R"J({"marker": "DONE", "fail_on": [{"regex": "x"}]})J")).scanner->prefilter());
  CHECK_FALSE(Scan(Json::parse(R"J({"marker": "DONE", "capture": {"u": "u=(\\S+)"}})J")).scanner->prefilter());
  CHECK_FALSE(Scan(Json::parse(R"J({"marker": "DONE", "progress": "(\\d+)%"})J")).scanner->prefilter());
  plain.read({"DONE"});
  CHECK_FALSE(plain.scanner->prefilter());  // after the marker, lines are read for captures
}

TEST_CASE("line scanner: a malformed rule is a permanent error, a bad regex a RegexError", "[steps][scanner]") {
  CHECK_THROWS_WITH(ScanRules::from(Json::parse(R"J({"marker": 7})J")),
                    "a pattern is a string or {regex: \"...\"}, not 7");
  CHECK_THROWS_AS(ScanRules::from(Json::parse(R"J({"marker": {"regex": "(unclosed"}})J")), RegexError);
}
