#include "engine/cli/cli_output.h"

#include <algorithm>
#include <sstream>

namespace flowrun {
namespace {

std::string node_id(const std::string& path) {
  std::string out;
  for (char c : path) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) out += c == '"' ? std::string("#quot;") : std::string(1, c);
  return out;
}

// Emits the steps as a chain; returns the ids of the first and last nodes.
std::pair<std::string, std::string> emit(std::ostringstream& out, const std::vector<Step>& steps,
                                         const std::string& prefix, int indent) {
  std::string pad(indent * 2, ' ');
  std::string first, previous;
  for (const auto& s : steps) {
    std::string id = node_id(prefix + s.id);
    std::string entry = id, exit = id;
    if (s.kind == Step::Kind::kAction) {
      std::string label = s.id + "<br/>" + (s.type == "lua" ? "lua" : s.type);
      if (!s.if_expr.empty()) label += "<br/>if " + s.if_expr;
      out << pad << id << "[\"" << escape(label) << "\"]\n";
      for (const auto& [name, list] : s.nested) {
        out << pad << "subgraph " << id << "_" << name << "[\"" << name << "\"]\n";
        auto [f, l] = emit(out, list, prefix + s.id + "_" + name + "_", indent + 1);
        out << pad << "end\n";
        if (!f.empty()) out << pad << id << " -.-> " << f << "\n";
      }
    } else {
      std::string title = s.kind == Step::Kind::kForEach ? "for_each " + s.id + " (as " + s.as + ", concurrency " +
                                                               std::to_string(s.concurrency) + ")"
                                                         : s.id;
      out << pad << "subgraph " << id << "[\"" << escape(title) << "\"]\n";
      auto [f, l] = emit(out, s.steps, prefix + s.id + "_", indent + 1);
      if (!s.finally.empty()) {
        out << pad << "  subgraph " << id << "_finally[\"finally\"]\n";
        auto [ff, fl] = emit(out, s.finally, prefix + s.id + "_finally_", indent + 2);
        out << pad << "  end\n";
        if (!l.empty() && !ff.empty()) out << pad << "  " << l << " -.-> " << ff << "\n";
      }
      out << pad << "end\n";
    }
    if (!previous.empty()) out << pad << previous << " --> " << entry << "\n";
    if (first.empty()) first = entry;
    previous = exit;
  }
  return {first, previous};
}

std::string pad_right(const std::string& s, size_t width) {
  return s.size() >= width ? s + " " : s + std::string(width - s.size(), ' ');
}

}  // namespace

std::string workflow_graph(const Workflow& workflow) {
  std::ostringstream out;
  out << "flowchart TD\n";
  auto [first, last] = emit(out, workflow.steps, "", 1);
  if (!workflow.finally.empty()) {
    out << "  subgraph workflow_finally[\"finally (always runs)\"]\n";
    auto [f, l] = emit(out, workflow.finally, "finally_", 2);
    out << "  end\n";
    if (!last.empty() && !f.empty()) out << "  " << last << " -.-> " << f << "\n";
  }
  return out.str();
}

std::string step_catalogue(const StepRegistry& registry) {
  std::ostringstream out;
  for (const StepType* t : registry.all()) {
    const auto& info = t->info();
    out << info.name << (info.poller ? " (poller)" : "") << "\n    " << info.summary << "\n";
    for (const auto& p : info.params) {
      if (p.name == "*") {
        out << "      (any parameter)  " << p.description << "\n";
        continue;
      }
      out << "      " << pad_right(p.name, 16) << pad_right(to_string(p.type), 12)
          << (p.required ? "required  " : "optional  ") << p.description << "\n";
    }
    out << "\n";
  }
  return out.str();
}

Json step_catalogue_json(const StepRegistry& registry) {
  Json out = Json::array();
  for (const StepType* t : registry.all()) {
    const auto& info = t->info();
    Json params = Json::array();
    for (const auto& p : info.params)
      params.push_back(
          {{"name", p.name}, {"type", to_string(p.type)}, {"required", p.required}, {"description", p.description}});
    out.push_back({{"name", info.name}, {"summary", info.summary}, {"poller", info.poller}, {"params", params}});
  }
  return out;
}

namespace {

bool is_finally_path(const std::string& path) {
  return path.rfind("finally.", 0) == 0 || path.find(".finally.") != std::string::npos;
}

// The step executions that failed on their own account (not a for_each or group failing because
// of them), finally steps first.
std::vector<const StepRecord*> failures(const RunResult& result) {
  std::vector<const StepRecord*> out;
  for (const auto& r : result.records)
    if (r.status == StepState::kFailed && r.type != "for_each" && r.type != "group") out.push_back(&r);
  std::stable_partition(out.begin(), out.end(), [](const StepRecord* r) { return is_finally_path(r->path); });
  return out;
}

std::string one_line(const std::string& text, size_t limit) {
  std::string out = text.substr(0, text.find('\n'));
  if (out.size() > limit) out = out.substr(0, limit) + "...";
  return out;
}

}  // namespace

std::string run_summary(const RunResult& result, RunState state, const std::string& run_id, bool all) {
  std::ostringstream out;
  out << "\nrun " << run_id << " " << to_string(state) << " in " << format_duration(result.duration) << "\n";
  auto failed = failures(result);
  if (!failed.empty()) {
    out << "  failed:\n";
    size_t shown = 0;
    for (const StepRecord* r : failed) {
      if (shown++ == 20) {
        out << "    (" << failed.size() - 20 << " more; flowrun show " << run_id << " lists them)\n";
        break;
      }
      out << "    " << r->path << (is_finally_path(r->path) ? " (finally)" : "") << ": " << one_line(r->error, 300)
          << "\n";
    }
  } else if (!result.error.empty() && state != RunState::kSucceeded) {
    out << "  " << one_line(result.error, 300) << "\n";
  }
  out << "  " << pad_right("STEP", 32) << pad_right("TYPE", 18) << pad_right("STATUS", 11) << pad_right("TRIES", 6)
      << "TIME\n";
  size_t shown = 0, hidden = 0;
  for (const auto& r : result.records) {
    bool nested = r.path.find('[') != std::string::npos;
    if ((nested && !all) || shown++ >= 200) {
      ++hidden;
      continue;
    }
    out << "  " << pad_right(r.path, 32) << pad_right(r.type.substr(0, 17), 18) << pad_right(to_string(r.status), 11)
        << pad_right(r.attempts ? std::to_string(r.attempts) : "-", 6) << format_duration(r.duration) << "\n";
  }
  if (hidden) out << "  (" << hidden << " nested step executions not shown; -v shows all)\n";
  return out.str();
}

Json run_summary_json(const RunResult& result, RunState state, const std::string& run_id) {
  Json failed = Json::array();
  for (const StepRecord* r : failures(result))
    failed.push_back(
        {{"path", r->path}, {"type", r->type}, {"finally", is_finally_path(r->path)}, {"error", r->error}});
  Json steps = Json::array();
  for (const auto& r : result.records)
    if (r.path.find('[') == std::string::npos)
      steps.push_back({{"path", r.path},
                       {"type", r.type},
                       {"status", to_string(r.status)},
                       {"attempts", r.attempts},
                       {"duration_ms", r.duration.count()}});
  return {{"event", "run_finished"},
          {"run", run_id},
          {"status", to_string(state)},
          {"duration_ms", result.duration.count()},
          {"error", result.error},
          {"failed", failed},
          {"steps", steps}};
}

}  // namespace flowrun
