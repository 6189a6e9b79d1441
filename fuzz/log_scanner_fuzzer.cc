// libFuzzer target: a log arriving in chunks, split into lines and scanned by wait-for-marker's
// LineScanner (a marker, fail_on, a capture with validate, progress), and by the same kinds of
// patterns on RE2 directly; a second scanner reads the same chunks through its prefilter (runs of
// lines it rules out are skipped) and must decide the same. The first byte picks
// where the chunks are cut; the first line of the input is also compiled as a pattern, so
// pattern syntax is fuzzed too. A RegexError for a bad pattern is expected; a crash, a
// sanitizer report or a hang (a match that is not linear) is a finding.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "engine/io/line_splitter.h"
#include "engine/io/logging.h"
#include "engine/io/redactor.h"
#include "engine/io/user_regex.h"
#include "steps/instance/line_scanner.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using flowrun::UserRegex;
  static const UserRegex marker(R"(^DONE (\w+)$)");
  static const UserRegex fail_on("^(x|y)*z");
  static const UserRegex capture(R"(url=(\S+?)(?:\s|$))");
  static const UserRegex validate(R"(^https?://)");
  static const UserRegex progress(R"((\d+)/(\d+)|(\d+(?:\.\d+)?)%)");
  static const flowrun::Redactor redactor;
  static const flowrun::LogHub hub(
      [] {
        flowrun::LogOptions quiet;
        quiet.console = false;
        return quiet;
      }(),
      redactor);
  static const flowrun::StepLog step_log = hub.logger("fuzz");
  static const flowrun::ScanRules rules = flowrun::ScanRules::from(flowrun::Json::parse(R"J({
    "marker": {"regex": "^DONE (\\w+)$"}, "fail_on": [{"regex": "^(x|y)*z"}, "Traceback"],
    "capture": {"url": {"pattern": "url=(\\S+?)(?:\\s|$)", "validate": "^https?://", "required": false}},
    "progress": "(\\d+)/(\\d+)|(\\d+(?:\\.\\d+)?)%"})J"));
  if (size == 0) return 0;
  const size_t cut = 1 + data[0] % 64;
  const std::string_view log(reinterpret_cast<const char*>(data) + 1, size - 1);

  std::optional<UserRegex> own;
  const std::string first_line(log.substr(0, log.find('\n')));
  try {
    own.emplace(first_line);
  } catch (const flowrun::RegexError&) {
  }

  flowrun::LineScanner scanner(rules, 20);
  bool reading = true;
  flowrun::RegexGroups groups;
  size_t hits = 0;
  auto scan = [&](std::string_view line) {
    if (reading) reading = scanner.scan(line, step_log);
    if (marker.search(line, groups) && groups.size() != 2) __builtin_trap();
    if (fail_on.search(line)) ++hits;
    if (capture.search(line, groups) && groups[1] && validate.search(*groups[1])) ++hits;
    if (progress.search(line, groups)) {
      for (const auto& g : groups)
        if (g && (g->data() < line.data() || g->data() + g->size() > line.data() + line.size())) __builtin_trap();
    }
    if (own && own->search(line, groups) && static_cast<int>(groups.size()) != own->groups() + 1) __builtin_trap();
  };
  flowrun::LineSplitter splitter;
  for (size_t at = 0; at < log.size(); at += cut) splitter.feed(log.substr(at, cut), scan);
  splitter.finish(scan);

  // The same chunks through the prefilter, a new one every fourth chunk as polls ask for it.
  flowrun::LineScanner filtered(rules, 20);
  bool filtered_reading = true;
  auto scan_filtered = [&](std::string_view line) {
    if (filtered_reading) filtered_reading = filtered.scan(line, step_log);
  };
  flowrun::LineSplitter filtered_splitter;
  std::function<bool(std::string_view)> may_matter;
  for (size_t at = 0, n = 0; at < log.size(); at += cut, ++n) {
    if (n % 4 == 0) may_matter = filtered.prefilter(step_log);
    if (may_matter)
      filtered_splitter.feed_filtered(log.substr(at, cut), may_matter, scan_filtered);
    else
      filtered_splitter.feed(log.substr(at, cut), scan_filtered);
  }
  filtered_splitter.finish(scan_filtered);
  if (filtered.marker_line() != scanner.marker_line() || filtered.captured() != scanner.captured() ||
      filtered.progress() != scanner.progress() || filtered.progress_text() != scanner.progress_text() ||
      filtered.last_line() != scanner.last_line() || filtered.failure().has_value() != scanner.failure().has_value())
    __builtin_trap();
  if (auto a = scanner.failure(), b = filtered.failure(); a && (a->message != b->message || a->context != b->context))
    __builtin_trap();
  if (auto failure = scanner.failure()) {
    if (failure->context.size() > 21 + flowrun::LineScanner::kMaxLinesAfter) __builtin_trap();
    if (failure->message.rfind("the log matched fail_on '", 0) != 0) __builtin_trap();
  }
  (void)hits;
  return 0;
}
