// libFuzzer target: bytes as an HTTP body or a command's output becomes JSON, the way the steps
// take it in: the depth-limited parse, then the UTF-8 sanitizer on the raw text and the parsed
// value, then dump(). A StepError for nesting is expected; anything else escaping (dump()'s
// type_error on invalid UTF-8 above all), a crash, a stack overflow or a hang is a finding.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/io/json_parse.h"
#include "engine/io/step_error.h"
#include "engine/io/utf8.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // The raw text as a step output (exec stdout, an http body that is not JSON).
  const std::string text = flowrun::valid_utf8(bytes);
  if (flowrun::valid_utf8_prefix(text) != text.size()) __builtin_trap();
  flowrun::Json raw = {{"body", std::string(bytes)}, {std::string(bytes.substr(0, 16)), 1}};
  flowrun::make_valid_utf8(raw);
  (void)raw.dump();  // throws type_error.316 if the sanitizer missed a byte
  (void)flowrun::dump_json({{"body", std::string(bytes)}});
  (void)flowrun::first_invalid_utf8(bytes);
  try {
    flowrun::Json parsed = flowrun::parse_json_limited(bytes, 64);
    if (!parsed.is_discarded()) {
      flowrun::Json copy = parsed;  // copying recurses per level: the limit keeps it shallow
      flowrun::make_valid_utf8(copy);
      (void)copy.dump();
    }
  } catch (const flowrun::StepError&) {
  }
  return 0;
}
