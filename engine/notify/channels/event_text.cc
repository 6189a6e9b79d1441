#include "engine/notify/channels/event_text.h"

#include "engine/io/utf8.h"
#include "engine/notify/channels/channel_util.h"

namespace flowrun {
namespace {

constexpr size_t kMaxField = 300;  // bytes of one value in a headline or a line
constexpr size_t kMaxListed = 20;  // items a digest names before "and N more"

// payload[key], else payload.data[key], else null.
const Json& field(const Json& payload, const char* key) {
  static const Json kNull;
  if (!payload.is_object()) return kNull;
  auto it = payload.find(key);
  if (it != payload.end() && !it->is_null()) return *it;
  auto data = payload.find("data");
  if (data != payload.end() && data->is_object()) {
    auto d = data->find(key);
    if (d != data->end()) return *d;
  }
  return kNull;
}

// A value as one line of text: strings as they are, anything else as compact JSON.
std::string one_line(const Json& value, size_t max = kMaxField) {
  if (value.is_null()) return "";
  std::string text = value.is_string() ? value.get<std::string>() : dump_json(value);
  for (char& c : text)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = ' ';
  return cut_utf8(text, max);
}

std::string text_field(const Json& payload, const char* key) { return one_line(field(payload, key)); }

std::string run_of(const Json& payload) {
  std::string run = text_field(payload, "run");
  return run.empty() ? text_field(payload, "run_id") : run;
}

// "video_batch run r-123", or as much of it as the payload names.
std::string subject_of(const Json& payload) {
  std::string workflow = text_field(payload, "workflow");
  std::string run = run_of(payload);
  if (run.empty()) return workflow.empty() ? "flowrun" : workflow;
  return (workflow.empty() ? "" : workflow + " ") + "run " + run;
}

// How an item is named: its step path, with its value when that is short text ("videos[2] (b.mp4)").
std::string item_label(const Json& payload) {
  std::string path = text_field(payload, "path");
  const Json& item = field(payload, "item");
  std::string value = item.is_string() || item.is_number() ? one_line(item, 80) : "";
  if (path.empty()) {
    if (!value.empty()) return value;
    const Json& index = field(payload, "index");
    return index.is_number() ? "#" + one_line(index) : "?";
  }
  return value.empty() ? path : path + " (" + value + ")";
}

// "1 of 3 items failed" when the payload counts the items.
std::string item_counts(const Json& payload) {
  const Json& failed = field(payload, "failed");
  const Json& total = field(payload, "total");
  if (!failed.is_number_integer()) return "";
  std::string text = one_line(failed);
  if (total.is_number_integer()) text += " of " + one_line(total);
  return text + " item" + (failed.get<long long>() == 1 && !total.is_number_integer() ? "" : "s") + " failed";
}

std::string with_detail(std::string head, const std::string& detail) {
  return detail.empty() ? head : head + ": " + detail;
}

// The event kind every entry of a digest shares (entries naming none count as the digest's own
// kind, unless that is just "digest"), or "" when they differ.
std::string common_kind(const Json& payload, const Json& events) {
  std::string own = text_field(payload, "event");
  if (own == "digest") own.clear();
  std::string kind;
  for (const Json& e : events) {
    std::string k = e.is_object() ? text_field(e, "event") : "";
    if (k.empty()) k = own;
    if (k.empty() || (!kind.empty() && k != kind)) return "";
    kind = k;
  }
  return kind;
}

std::string digest_headline(const Json& payload, const Json& events) {
  const Json& count = field(payload, "count");
  size_t n = count.is_number_unsigned() ? count.get<size_t>() : events.size();
  const std::string kind = common_kind(payload, events);
  std::string what = n == 1 ? "event" : "events";
  if (kind == "item_failed") what = n == 1 ? "item failed" : "items failed";
  if (kind == "item_succeeded") what = n == 1 ? "item succeeded" : "items succeeded";
  if (!kind.empty() && kind != "item_failed" && kind != "item_succeeded") what = kind + " " + what;
  std::string names;
  size_t listed = 0;
  for (const Json& e : events) {
    if (listed == kMaxListed) break;
    std::string name = e.is_object() ? item_label(e) : one_line(e, 80);
    if (kind.empty() && e.is_object() && !text_field(e, "event").empty()) name += " " + text_field(e, "event");
    names += (listed++ ? ", " : "") + name;
  }
  if (n > listed && listed) names += ", and " + std::to_string(n - listed) + " more";
  return with_detail(subject_of(payload) + ": " + std::to_string(n) + " " + what, names);
}

bool is_digest(const Json& payload) {
  return payload.is_object() && payload.contains("events") && payload["events"].is_array();
}

}  // namespace

std::string event_kind(const Json& payload) {
  if (is_digest(payload)) return common_kind(payload, payload["events"]);
  return text_field(payload, "event");
}

std::string event_link(const Json& payload) {
  for (const char* key : {"link", "view_url", "live_url"}) {
    const Json& v = field(payload, key);
    if (v.is_string()) return one_line(v, 1000);
  }
  return "";
}

std::string event_headline(const Json& payload, size_t max) {
  const std::string event = text_field(payload, "event");
  const std::string subject = subject_of(payload);
  const std::string path = text_field(payload, "path");
  const std::string error = text_field(payload, "error");
  const std::string message = text_field(payload, "message");
  const std::string detail = !error.empty() ? error : message;
  std::string line;
  if (is_digest(payload)) {
    line = digest_headline(payload, payload["events"]);
  } else if (event == "succeeded" || event == "failed" || event == "partial" || event == "cancelled") {
    // The run's own message only repeats the subject ("run r-1 of w partial"): the error says more.
    std::string counts = event == "succeeded" ? "" : item_counts(payload);
    line = with_detail(subject + " " + event, !counts.empty() ? counts : error);
    if (!counts.empty() && !error.empty()) line += " (" + error + ")";
  } else if (event == "item_failed" || event == "item_succeeded") {
    line = with_detail(subject + ": item " + item_label(payload) + (event == "item_failed" ? " failed" : " succeeded"),
                       event == "item_failed" ? detail : "");
  } else if (event == "stalled") {
    std::string stalls = text_field(payload, "stalls");
    line = with_detail(subject + ": " + (path.empty() ? "a step" : path) + " stalled" +
                           (stalls.empty() ? "" : " (" + stalls + " checks without progress)"),
                       detail);
  } else if (event == "recovered") {
    std::string after = text_field(payload, "after_s");
    line = subject + ": " + (path.empty() ? "a step" : path) + " recovered" +
           (after.empty() ? "" : " after " + after + "s");
  } else if (event == "instance_lost" || event == "instance_recovered") {
    std::string instance = text_field(payload, "instance");
    std::string reason = text_field(payload, "reason");
    line = with_detail(subject + ": instance " + (instance.empty() ? "?" : instance) +
                           (event == "instance_lost" ? " lost" : " recovered") + (path.empty() ? "" : " at " + path),
                       !reason.empty() ? reason : detail);
  } else {
    line = with_detail(subject + ": " + (path.empty() ? "" : path + " ") + (event.empty() ? "event" : event), detail);
  }
  return cut_utf8(line, max);
}

std::vector<std::string> event_lines(const Json& payload) {
  std::vector<std::string> lines;
  auto add = [&](const char* label, const std::string& value) {
    if (!value.empty()) lines.push_back(std::string(label) + ": " + value);
  };
  add("Run", run_of(payload));
  add("Workflow", text_field(payload, "workflow"));
  add("Event", text_field(payload, "event"));
  add("At", text_field(payload, "at"));
  add("Status", text_field(payload, "status"));
  add("Step", text_field(payload, "path"));
  add("Item", text_field(payload, "item"));
  add("Instance", text_field(payload, "instance"));
  add("Message", text_field(payload, "message"));
  add("Error", one_line(field(payload, "error"), 2000));
  add("Outputs", one_line(field(payload, "outputs"), 2000));
  add("Live view", event_link(payload));
  return lines;
}

}  // namespace flowrun
