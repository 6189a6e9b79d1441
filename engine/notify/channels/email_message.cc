#include "engine/notify/channels/email_message.h"

#include <ctime>
#include <functional>

#include "engine/io/utf8.h"
#include "engine/notify/channels/channel_util.h"
#include "engine/notify/channels/event_text.h"

namespace flowrun {
namespace {

constexpr size_t kMaxLine = 990;  // RFC 5322 allows 998 bytes before CRLF

// "Tue, 05 Mar 2024 10:00:00 +0000", in English whatever the locale.
std::string rfc5322_date(WallTime now) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t t = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday], tm.tm_mday,
                kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buffer;
}

std::string base64(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    unsigned n = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) n |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) n |= static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[n & 63] : '=';
  }
  return out;
}

// A header value as RFC 2047 encoded words when it is not plain ASCII, folded between words.
std::string encode_words(const std::string& value) {
  bool ascii = true;
  for (unsigned char c : value) ascii = ascii && c < 0x80;
  if (ascii) return value;
  std::string out;
  size_t at = 0;
  while (at < value.size()) {
    size_t end = std::min(value.size(), at + 45);  // 45 bytes: a 75-character encoded word
    while (end < value.size() && (static_cast<unsigned char>(value[end]) & 0xC0) == 0x80) --end;
    out += (out.empty() ? "" : "\r\n ") + std::string("=?UTF-8?B?") + base64(value.substr(at, end - at)) + "?=";
    at = end;
  }
  return out;
}

// `text` with CRLF line ends and no line longer than kMaxLine bytes (longer ones are broken).
std::string crlf_lines(const std::string& text) {
  std::string out;
  size_t line = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      out += "\r\n";
      line = 0;
      continue;
    }
    // Break before a lead byte only, so a character is never split across lines.
    if (line >= kMaxLine && (static_cast<unsigned char>(c) & 0xC0) != 0x80) {
      out += "\r\n";
      line = 0;
    }
    out += c;
    ++line;
  }
  return out;
}

// The Message-ID's right side: the sender's domain when it is plain, else "flowrun.invalid".
std::string id_domain(const std::string& from) {
  auto at = from.rfind('@');
  std::string domain = at == std::string::npos ? "" : from.substr(at + 1);
  if (domain.empty() ||
      domain.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != std::string::npos)
    return "flowrun.invalid";
  return domain;
}

}  // namespace

std::string header_value(const std::string& value) {
  std::string out = valid_utf8(value);
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = ' ';
  return out;
}

std::string bare_address(const std::string& address) {
  std::string a = header_value(address);
  auto open = a.rfind('<');
  auto close = a.rfind('>');
  if (open != std::string::npos && close != std::string::npos && close > open) a = a.substr(open + 1, close - open - 1);
  auto first = a.find_first_not_of(' ');
  auto last = a.find_last_not_of(' ');
  return first == std::string::npos ? "" : a.substr(first, last - first + 1);
}

EmailMessage email_message(const Json& target, const Json& payload, WallTime now, unsigned long long unique) {
  EmailMessage m;
  const std::string from = header_value(target_string(target, "from"));
  std::vector<std::string> to;
  for (const std::string& t : target_strings(target, "to")) {
    to.push_back(header_value(t));
    m.envelope_to.push_back(bare_address(t));
  }
  m.envelope_from = bare_address(from);
  std::string prefix =
      target.is_object() && target.contains("subject") ? target_string(target, "subject") : "[flowrun]";
  std::string subject = header_value((prefix.empty() ? "" : prefix + " ") + event_headline(payload, 200));
  subject = cut_utf8(subject, 250);

  std::string to_line;
  for (const std::string& t : to) to_line += (to_line.empty() ? "" : ",\r\n ") + t;  // folded: any number fits
  const long long ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const size_t digest = std::hash<std::string>{}(dump_json(payload));
  char id[96];
  std::snprintf(id, sizeof id, "%lld.%zx.%llu", ms, digest, unique);

  std::string headers;
  headers += "From: " + from + "\r\n";
  headers += "To: " + to_line + "\r\n";
  headers += "Subject: " + encode_words(subject) + "\r\n";
  headers += "Date: " + rfc5322_date(now) + "\r\n";
  headers += "Message-ID: <" + std::string(id) + "@" + id_domain(m.envelope_from) + ">\r\n";
  headers += "MIME-Version: 1.0\r\n";
  headers += "Content-Type: text/plain; charset=utf-8\r\n";
  headers += "Content-Transfer-Encoding: 8bit\r\n";
  headers += "Auto-Submitted: auto-generated\r\n";

  std::string body = event_headline(payload, 1000) + "\n\n";
  for (const std::string& line : event_lines(payload)) body += line + "\n";
  body += "\nThe event as JSON:\n";
  const std::string json = dump_json(payload, 2);
  const size_t room = kEmailMaxBody > body.size() + 64 ? kEmailMaxBody - body.size() - 64 : 0;
  body += json.size() <= room ? json : cut_utf8(json, room) + "\n(cut at " + std::to_string(kEmailMaxBody) + " bytes)";
  body += "\n";
  m.text = headers + "\r\n" + crlf_lines(body);
  return m;
}

}  // namespace flowrun
