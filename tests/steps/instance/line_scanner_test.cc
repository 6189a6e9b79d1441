// The line scanner on its own: lines in, what wait-for-marker would decide out (the marker,
// fail_on with its context, captures, progress bars, the prefilter), with no source or step.
#include "steps/instance/line_scanner.h"

#include <catch2/catch.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <ostream>
#include <random>

#include "engine/io/line_splitter.h"
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

  explicit Scan(const Json& with, int context_lines = 20, size_t tail_lines = 0) {
    LogOptions options;
    options.console = false;
    options.capture = true;
    hub = std::make_unique<LogHub>(options, redactor);
    scanner.emplace(ScanRules::from(with), context_lines, tail_lines);
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
  const StepLog log = plain.hub->logger("w");
  auto may_matter = plain.scanner->prefilter(log);
  REQUIRE(may_matter);
  CHECK_FALSE(may_matter("a\nb\nc\n"));
  CHECK(may_matter("a\nall DONE\n"));
  CHECK(may_matter("x boom y\n"));
  plain.read({"DONE"});
  CHECK_FALSE(plain.scanner->prefilter(log));  // after the marker, lines are read for captures
}

TEST_CASE("line scanner: regexes, captures and progress go through one set, progress alone is skipped",
          "[steps][scanner]") {
  Scan s(Json::parse(R"J({"marker": {"regex": "^D.NE$"}, "fail_on": [{"regex": "^FATAL"}],
                          "capture": {"u": {"pattern": "u=(\\S+)", "required": false}},
                          "progress": "frame (\\d+)/(\\d+)"})J"));
  const StepLog log = s.hub->logger("w");
  auto may_matter = s.scanner->prefilter(log);
  REQUIRE(may_matter);
  CHECK(may_matter("a\nDONE\n"));
  CHECK_FALSE(may_matter("a DONE\nDONE b\n"));  // ^ and $ hold per line, not only at the run's ends
  CHECK(may_matter("x\nFATAL y\n"));
  CHECK_FALSE(may_matter("x FATAL y\n"));
  CHECK(may_matter("x\nu=1\n"));
  // Only progress: ruled out, and the last progress line before the run's last one counts.
  CHECK_FALSE(may_matter("frame 1/10\nframe 5/10\nframe 6/10\n"));
  CHECK(s.scanner->progress() == std::optional<double>(50.0));
  CHECK(s.logged() == Lines{"INFO progress [##########..........]  50% (frame 5/10)"});
  // A pattern anchored to the whole text cannot be searched per run: every line is scanned.
  CHECK_FALSE(Scan(Json::parse(R"J({"marker": {"regex": "\\ADONE"}})J")).scanner->prefilter(log));
  CHECK_FALSE(Scan(Json::parse(R"J({"marker": {"regex": "(?-m)^DONE"}})J")).scanner->prefilter(log));
}

TEST_CASE("line scanner: a run ruled out still leaves its last lines as a failure's context", "[steps][scanner]") {
  Scan s(Json::parse(R"J({"marker": "DONE", "fail_on": ["boom"], "progress": "(\\d+)%"})J"), 2);
  const StepLog log = s.hub->logger("w");
  auto may_matter = s.scanner->prefilter(log);
  CHECK_FALSE(may_matter("a\nb\nc\nd\n"));
  s.read({"d", "boom"});  // the reader hands over the run's last line itself
  REQUIRE(s.scanner->failure());
  CHECK(s.scanner->failure()->context == Lines{"c", "d", "boom"});
  CHECK_FALSE(s.scanner->prefilter(log));  // after a failure every line is context
}

TEST_CASE("line scanner: the tail is the last lines read, ruled-out runs included, and the context stays its size",
          "[steps][scanner]") {
  Scan s(Json::parse(R"J({"marker": "DONE", "fail_on": ["boom"]})J"), 2, 5);
  LineScanner& scanner = *s.scanner;
  const StepLog log = s.hub->logger("w");
  const uint64_t before = scanner.lines_kept();
  auto may_matter = scanner.prefilter(log);
  CHECK_FALSE(may_matter("a\nb\nc\nd\ne\nf\ng\n"));
  CHECK(scanner.lines_kept() - before == 4);  // of the run's first six lines, the tail's last four
  scanner.scan("g", log);                     // the reader hands over the run's last line itself
  CHECK(scanner.tail(5) == Lines{"c", "d", "e", "f", "g"});
  CHECK(scanner.tail(2) == Lines{"f", "g"});
  CHECK(scanner.tail(100) == Lines{"c", "d", "e", "f", "g"});
  scanner.scan("boom", log);
  REQUIRE(scanner.failure());
  CHECK(scanner.failure()->context == Lines{"f", "g", "boom"});  // context_lines 2, and the failing line
  scanner.scan("after", log);                                    // read after the failure: context, and the tail's end
  CHECK(scanner.tail(3) == Lines{"g", "boom", "after"});
  CHECK(scanner.tail(1) == Lines{"after"});
  CHECK(scanner.lines_kept() - before == 7);
}

TEST_CASE("line scanner: between reads only the context's lines are kept", "[steps][scanner]") {
  Scan s(Json::parse(R"J({"marker": "DONE", "fail_on": ["boom"]})J"), 2, 5);
  LineScanner& scanner = *s.scanner;
  const StepLog log = s.hub->logger("w");
  for (const char* line : {"a", "b", "c", "d"}) scanner.scan(line, log);
  CHECK(scanner.tail(5) == Lines{"a", "b", "c", "d"});
  scanner.end_read();
  CHECK(scanner.tail(5) == Lines{"c", "d"});  // the two a failure in the next read would show
  scanner.scan("boom", log);
  REQUIRE(scanner.failure());
  CHECK(scanner.failure()->context == Lines{"c", "d", "boom"});

  LineScanner waiting(ScanRules::from(Json::parse(R"J({"marker": "DONE"})J")), 0, 5);
  for (const char* line : {"a", "b", "c"}) waiting.scan(line, log);
  const uint64_t kept = waiting.lines_kept();
  waiting.end_read();
  CHECK(waiting.tail(5).empty());  // a monitor with no context keeps no line while it waits
  CHECK(waiting.lines_kept() == kept);
  waiting.scan("d", log);
  CHECK(waiting.tail(5) == Lines{"d"});
}

TEST_CASE("recent lines: the last lines kept, whatever their lengths, oldest first", "[steps][scanner]") {
  std::mt19937 random(7);
  for (size_t keep : {1, 2, 21, 40}) {
    RecentLines recent(keep);
    std::deque<std::string> expected;
    for (int i = 0; i < 3000; ++i) {
      // Mostly short lines, some empty, some past kContextLineMax (kept cut to it).
      const size_t length = random() % 10 == 0 ? random() % 3000 : random() % 120;
      std::string line = std::to_string(i) + std::string(length, static_cast<char>('a' + i % 26));
      recent.push(line);
      expected.push_back(line.substr(0, kContextLineMax));
      if (expected.size() > keep) expected.pop_front();
      if (i % 97 == 0 || i > 2990) {
        REQUIRE(recent.lines() == Lines(expected.begin(), expected.end()));
        REQUIRE(recent.lines(1) == Lines{expected.back()});
      }
    }
    CHECK(recent.pushed() == 3000);
    recent.keep_last(3);  // the last three stay, and the ring goes on from them
    expected.erase(expected.begin(), expected.end() - std::min<std::ptrdiff_t>(3, expected.size()));
    CHECK(recent.lines() == Lines(expected.begin(), expected.end()));
    for (const char* line : {"x", "y"}) {
      recent.push(line);
      expected.push_back(line);
      if (expected.size() > keep) expected.pop_front();
    }
    CHECK(recent.lines() == Lines(expected.begin(), expected.end()));
    recent.keep_last(0);
    CHECK(recent.lines().empty());
    CHECK(recent.pushed() == 3002);
  }
  RecentLines none;
  none.push("x");
  CHECK(none.lines().empty());
}

TEST_CASE("recent lines: reads that each end by keeping the context", "[steps][scanner]") {
  // A waiting monitor: each read pushes some lines (the tail), then keeps only the context,
  // which the next read's lines follow.
  std::mt19937 random(11);
  RecentLines recent(21);
  std::deque<std::string> expected;
  for (int read = 0; read < 500; ++read) {
    const int lines = static_cast<int>(random() % 40);
    for (int i = 0; i < lines; ++i) {
      std::string line = std::to_string(read) + ":" + std::string(random() % 300, 'x');
      recent.push(line);
      expected.push_back(line);
      if (expected.size() > 21) expected.pop_front();
    }
    REQUIRE(recent.lines() == Lines(expected.begin(), expected.end()));
    const size_t most = read % 7 == 0 ? 0 : 20;
    recent.keep_last(most);
    while (expected.size() > most) expected.pop_front();
    REQUIRE(recent.lines() == Lines(expected.begin(), expected.end()));
  }
}

TEST_CASE("line scanner: a malformed rule is a permanent error, a bad regex a RegexError", "[steps][scanner]") {
  CHECK_THROWS_WITH(ScanRules::from(Json::parse(R"J({"marker": 7})J")),
                    "a pattern is a string or {regex: \"...\"}, not 7");
  CHECK_THROWS_AS(ScanRules::from(Json::parse(R"J({"marker": {"regex": "(unclosed"}})J")), RegexError);
}

namespace {

// What a scan decided, to compare two ways of reading the same log.
struct Outcome {
  std::string marker_line, last_line, progress_text, failure;
  Lines context;
  Json captured;
  std::optional<double> progress;
  std::optional<std::string> missing;
  bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  os << "marker=" << o.marker_line.substr(0, 80) << " last=" << o.last_line.substr(0, 80) << " failure=" << o.failure
     << " context=" << o.context.size() << " captured=" << o.captured.dump()
     << " progress=" << (o.progress ? std::to_string(*o.progress) : "-") << " (" << o.progress_text << ")";
  return os;
}

Outcome outcome_of(const LineScanner& s) {
  Outcome o{s.marker_line(), s.last_line(), s.progress_text(), "", {}, s.captured(), s.progress(), s.missing_capture()};
  if (auto f = s.failure()) {
    o.failure = f->message;
    o.context = f->context;
  }
  return o;
}

// Reads `log` in chunks of `chunk` bytes, as FileFollower does, `chunks_per_poll` chunks per
// poll; with `filtered`, each poll asks the scanner for its prefilter as wait-for-marker does.
Outcome read_log(const Json& with, int context_lines, std::string_view log, size_t chunk, bool filtered,
                 size_t chunks_per_poll = 4) {
  Scan s(with, context_lines);
  const StepLog step_log = s.hub->logger("w");
  LineSplitter splitter;
  bool stop = false;
  auto deliver = [&](std::string_view line) {
    if (!stop && !s.scanner->scan(line, step_log)) stop = true;
  };
  std::function<bool(std::string_view)> may_matter;
  for (size_t at = 0, n = 0; at < log.size() && !stop; at += chunk, ++n) {
    if (n % chunks_per_poll == 0) may_matter = filtered ? s.scanner->prefilter(step_log) : nullptr;
    const std::string_view piece = log.substr(at, chunk);
    if (may_matter)
      splitter.feed_filtered(piece, may_matter, deliver);
    else
      splitter.feed(piece, deliver);
  }
  return outcome_of(*s.scanner);
}

const char* const kVideoBatch = R"J({"marker": "VASTAI_PIPELINE_COMPLETED_SUCCESSFULLY",
  "capture": {"result_url": [{"pattern": "RESULT_URL=(\\S+)", "validate": "^(https?|s3|file)://"},
                             {"pattern": "https://[^\\s\"'<>]+", "validate": "/(output|both)/"}]},
  "fail_on": ["Traceback (most recent call last)", "CUDA out of memory", {"regex": "^FATAL"}],
  "progress": "(\\d+(?:\\.\\d+)?)%|frame (\\d+)/(\\d+)"})J";
const char* const kRegexes = R"J({"marker": {"regex": "^DONE (\\w+)$"}, "fail_on": [{"regex": "^(x|y)*z"}, "Traceback"],
  "capture": {"url": {"pattern": "url=(\\S+?)(?:\\s|$)", "validate": "^https?://", "required": false}},
  "progress": "(\\d+)/(\\d+)|(\\d+(?:\\.\\d+)?)%"})J";
const char* const kSubstrings = R"J({"marker": "DONE", "fail_on": ["boom", "Traceback"]})J";

// A log of `lines` lines drawn from what the rules look for, near misses, invalid UTF-8 and
// (with `long_lines`) lines of megabytes.
std::string random_log(std::mt19937& rng, int lines, bool long_lines) {
  static const std::vector<std::string> kinds = {"frame 00001234/99999 encoding at 31.4 fps",
                                                 "frame 7/10",
                                                 "42.5%",
                                                 "nan%",
                                                 "0/0",
                                                 "step 3/4",
                                                 "VASTAI_PIPELINE_COMPLETED_SUCCESSFULLY",
                                                 "DONE abc",
                                                 "DONE",
                                                 "xDONE abc",
                                                 "Traceback (most recent call last):",
                                                 "  File \"x.py\", line 1",
                                                 "ValueError: bad",
                                                 "FATAL: disk",
                                                 " FATAL not at start",
                                                 "CUDA out of memory",
                                                 "xyxyz",
                                                 "xyxy",
                                                 "boom",
                                                 "RESULT_URL=https://r/output/1.mp4",
                                                 "RESULT_URL=ftp://no",
                                                 "https://b/input/2.mp4",
                                                 "see https://c/output/3.mp4 and https://d/both/4.mp4 too",
                                                 "url=https://u/1 x",
                                                 "url=ftp://u/2",
                                                 "\xff\xfe\x80 invalid \xc3\x28 utf-8",
                                                 "",
                                                 "plain text",
                                                 "\t  indented"};
  std::string log;
  int big_lines = 0;
  for (int i = 0; i < lines; ++i) {
    const size_t pick = rng() % (kinds.size() + 8);
    if (pick < kinds.size()) {
      log += kinds[pick];
    } else if (long_lines && pick == kinds.size() && big_lines++ < 3) {
      std::string big((1 << 20) + rng() % 100000, 'x');  // "xxxx..." is hostile to ^(x|y)*z
      if (rng() % 2) big += "frame 5/9";
      if (rng() % 3 == 0) big[rng() % big.size()] = '\xff';
      log += big;
    } else {
      log += "frame " + std::to_string(rng() % 1000) + "/1000 filler " + std::string(rng() % 200, '.');
    }
    log += '\n';
  }
  return log;
}

}  // namespace

TEST_CASE("line scanner: reading runs through the prefilter decides what reading every line decides",
          "[steps][scanner]") {
  std::mt19937 rng(20261123);
  for (const char* rules : {kVideoBatch, kRegexes, kSubstrings}) {
    const Json with = Json::parse(rules);
    for (int round = 0; round < 40; ++round) {
      const std::string log = random_log(rng, 50 + static_cast<int>(rng() % 3000), round % 10 == 0);
      const int context = std::vector<int>{0, 1, 3, 20}[rng() % 4];
      const size_t chunk = std::vector<size_t>{7, 100, 4096, 65536, 1 << 20}[rng() % 5];
      INFO("rules " << rules << " round " << round << " context " << context << " chunk " << chunk);
      CHECK(read_log(with, context, log, chunk, true) == read_log(with, context, log, chunk, false));
    }
  }
}

TEST_CASE("line scanner: the prefilter agrees on adversarial logs", "[steps][scanner]") {
  const Json video = Json::parse(kVideoBatch);
  const Json regexes = Json::parse(kRegexes);
  std::string progress_only;
  for (int i = 0; i < 20000; ++i) progress_only += "frame " + std::to_string(i) + "/20000 at 31 fps\n";
  // The marker at the very end of a long run of progress lines, a failure right after a run
  // boundary (its context comes from a run that was ruled out), nan progress last.
  const std::string marker_last = progress_only + "VASTAI_PIPELINE_COMPLETED_SUCCESSFULLY\n";
  std::string fail_late = progress_only;
  fail_late.insert(65536 - 10, "\nFATAL: out of disk\n");
  const std::string nan_last = progress_only + "nan%\n0.0/0 still going\n";
  const std::string hostile = std::string(3 << 20, 'x') + "y\n" + std::string(2 << 20, 'x') + "z\nDONE ok\n";
  const std::string one_line = "frame 1/2 " + std::string(5 << 20, '\x80') + " frame 2/4\n";
  for (size_t chunk : {size_t{1} << 16, size_t{1} << 20, size_t{1000}}) {
    for (const Json* with : {&video, &regexes}) {
      for (const std::string* log :
           std::vector<const std::string*>{&marker_last, &fail_late, &nan_last, &hostile, &one_line}) {
        INFO("chunk " << chunk << " log of " << log->size() << " bytes");
        CHECK(read_log(*with, 20, *log, chunk, true) == read_log(*with, 20, *log, chunk, false));
      }
    }
  }
  const Outcome done = read_log(video, 20, marker_last, 1 << 16, true);
  CHECK(done.marker_line == "VASTAI_PIPELINE_COMPLETED_SUCCESSFULLY");
  CHECK(done.progress == std::optional<double>(100.0 * 19999 / 20000));
  const Outcome failed = read_log(video, 20, fail_late, 1 << 16, true);
  CHECK(failed.failure.rfind("the log matched fail_on '^FATAL': FATAL: out of disk", 0) == 0);
  CHECK(failed.context.size() == 21 + LineScanner::kMaxLinesAfter);
}
