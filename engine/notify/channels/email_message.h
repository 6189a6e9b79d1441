#pragma once
// The RFC 5322 message the email channel sends: built here, apart from the sending, so tests
// read it byte for byte.
#include <string>
#include <vector>

#include "engine/io/clock.h"
#include "engine/io/json.h"

namespace flowrun {

struct EmailMessage {
  std::string envelope_from;             // the bare address of `from`, for MAIL FROM
  std::vector<std::string> envelope_to;  // the bare addresses of `to`, for RCPT TO
  std::string text;                      // headers, an empty line, the body; CRLF line ends
};

// The largest body sent; the event's JSON is cut to fit.
constexpr size_t kEmailMaxBody = 64 << 10;

// "a@b.c" of "Name <a@b.c>" or of "a@b.c" itself, line breaks and controls dropped.
std::string bare_address(const std::string& address);

// A header value on one line: every CR, LF and other control character becomes a space, so no
// value (a subject built from the payload above all) can start another header.
std::string header_value(const std::string& value);

// From target.from, target.to (a string or a list), target.subject (a prefix, default
// "[flowrun]") and the payload: From, To, Subject (RFC 2047 encoded when not ASCII), Date,
// Message-ID, MIME-Version, Content-Type text/plain; charset=utf-8, Content-Transfer-Encoding
// 8bit; the body is the event in words, then its JSON, at most kEmailMaxBody bytes, lines at
// most 998 bytes. `unique` goes into the Message-ID (the caller's counter or random number).
EmailMessage email_message(const Json& target, const Json& payload, WallTime now, unsigned long long unique);

}  // namespace flowrun
