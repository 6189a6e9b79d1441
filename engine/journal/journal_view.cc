#include "engine/journal/journal_view.h"

#include <ctime>
#include <sstream>

#include "engine/io/duration.h"
#include "engine/io/utf8.h"

namespace flowrun {
namespace {
std::string pad(const std::string& s, size_t width) {
  return s.size() >= width ? s + " " : s + std::string(width - s.size(), ' ');
}

int depth_of(const std::string& path) {
  int d = 0;
  for (char c : path) d += c == '.';
  return d;
}
}  // namespace

std::string format_time_ms(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string runs_table(const std::vector<RunRow>& runs) {
  std::ostringstream out;
  out << pad("RUN", 22) << pad("WORKFLOW", 20) << pad("STATUS", 12) << pad("STARTED", 20) << "OWNER\n";
  for (const auto& r : runs) {
    out << pad(r.id, 22) << pad(r.workflow_name, 20) << pad(r.status, 12) << pad(format_time_ms(r.started_ms), 20)
        << (r.owner_pid ? "pid " + std::to_string(r.owner_pid) + " on " + r.owner_host : "-") << "\n";
  }
  if (runs.empty()) out << "(no runs recorded)\n";
  return out.str();
}

std::string run_details(const RunRow& run, const std::vector<Json>& steps) {
  std::ostringstream out;
  out << "run       " << run.id << "\n"
      << "workflow  " << run.workflow_name << " (" << run.workflow_path << ")\n"
      << "status    " << run.status << (run.error.empty() ? "" : ": " + run.error) << "\n"
      << "started   " << format_time_ms(run.started_ms) << ", last change " << format_time_ms(run.updated_ms) << "\n"
      << "inputs    " << dump_json(run.inputs) << "\n\n";
  out << pad("STEP", 40) << pad("STATUS", 11) << pad("TRIES", 6) << "TIME\n";
  for (const auto& s : steps) {
    std::string path = s["path"];
    std::string name = std::string(2 * depth_of(path), ' ') + path;  // whole path: items differ only by index
    int64_t finished = s["finished_ms"];
    std::string took = finished ? format_duration(Duration(finished - s["started_ms"].get<int64_t>())) : "-";
    const std::string status = s["status"].get<std::string>();
    const std::string tries = std::to_string(s["attempts"].get<int64_t>());
    out << pad(name, 40) << pad(status, 11) << pad(tries, 6) << took << "\n";
    std::string outputs = s["outputs"];
    if (outputs != "{}" && !outputs.empty()) {
      // Long outputs are cut; `flowrun show --json` has them whole.
      out << std::string(2 * depth_of(path) + 4, ' ') << "outputs " << outputs.substr(0, 200);
      out << (outputs.size() > 200 ? "...\n" : "\n");
    }
    std::string error = s["error"];
    if (!error.empty()) out << std::string(2 * depth_of(path) + 4, ' ') << "error " << error.substr(0, 300) << "\n";
  }
  return out.str();
}

std::string items_table(const Json& view) {
  if (!view.is_object() || !view.contains("for_each")) return "";
  auto money = [](const Json& v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "$%.3f", v.is_number() ? v.get<double>() : 0.0);
    return std::string(buf);
  };
  auto text = [](const Json& v) { return v.is_string() ? v.get<std::string>() : std::string(); };
  std::ostringstream out;
  for (const auto& fe : view["for_each"]) {
    const Json& t = fe["totals"];
    out << "\nfor_each " << text(fe["path"]) << ": " << t["items"] << " items, " << t["succeeded"] << " succeeded, "
        << t["failed"] << " failed, " << t["running"] << " running, " << t["pending"] << " pending, " << t["cancelled"]
        << " cancelled, cost " << money(t["cost"]) << "\n";
    out << pad("#", 6) << pad("STATUS", 11) << pad("PROGRESS", 9) << pad("ELAPSED", 10) << pad("COST", 9)
        << "RESULT / LAST LINE\n";
    for (const auto& item : fe["items"]) {
      const std::string progress =
          item["progress"].is_number() ? std::to_string(static_cast<int>(item["progress"].get<double>())) + "%" : "-";
      const std::string elapsed =
          item["elapsed_ms"].is_number() ? format_duration(Duration(item["elapsed_ms"].get<int64_t>())) : "-";
      std::string last = item["result_url"].is_string() ? text(item["result_url"]) : text(item["last_line"]);
      if (last.size() > 80) last = valid_utf8(last.substr(0, 77)) + "...";
      out << pad(std::to_string(item["index"].get<int64_t>()), 6) << pad(text(item["status"]), 11) << pad(progress, 9)
          << pad(elapsed, 10) << pad(money(item["cost"]), 9) << last << "\n";
    }
  }
  return out.str();
}

}  // namespace flowrun
