#include "engine/journal/run_view.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "engine/io/run_state.h"
#include "engine/journal/journal.h"

namespace flowrun {
namespace {

constexpr size_t kEventsShown = 200;
constexpr size_t kMaxItems = 100'000;  // a count read from a live state is not trusted beyond this
constexpr double kMsPerHour = 3'600'000.0;

Json parsed(const Json& text) {
  if (!text.is_string()) return text;
  Json v = Json::parse(text.get<std::string>(), nullptr, false);
  return v.is_discarded() ? Json() : v;
}

std::string id_text(const Json& v) { return v.is_string() ? v.get<std::string>() : v.is_null() ? "" : v.dump(); }

bool active(const RunRow& run) { return run.status == to_string(RunState::kRunning); }

// When a run's clocks stop: now while it runs, else its last change.
int64_t end_of(const RunRow& run, int64_t now_ms) {
  return active(run) ? now_ms : std::max(run.updated_ms, run.started_ms);
}

// One rented instance, from its instance_started and instance_destroyed events.
struct Rented {
  std::string path;  // where it was rented (an item's provision step, or a recovering wait)
  double price_per_hour = 0;
  int64_t started_ms = 0;
  int64_t ended_ms = 0;  // 0: not destroyed (yet)

  double cost(int64_t until_ms) const {
    const int64_t end = ended_ms > 0 ? ended_ms : until_ms;
    return std::max<int64_t>(0, end - started_ms) / kMsPerHour * price_per_hour;
  }
};

// By instance id: a resume may report an instance again, and its first start counts.
std::map<std::string, Rented> rented_instances(const std::vector<Json>& events) {
  std::map<std::string, Rented> out;
  for (const auto& e : events) {
    const std::string kind = e.value("kind", "");
    if (kind != "instance_started" && kind != "instance_destroyed") continue;
    const Json data = parsed(e.value("data", Json()));
    if (!data.is_object()) continue;
    const std::string id = id_text(data.value("instance", Json()));
    if (id.empty()) continue;
    const int64_t at = e.value("at_ms", int64_t{0});
    if (kind == "instance_started") {
      if (out.count(id)) continue;
      const Json price = data.value("price_per_hour", Json(0));
      out[id] = Rented{e.value("path", ""), price.is_number() ? price.get<double>() : 0.0, at, 0};
    } else if (auto it = out.find(id); it != out.end() && it->second.ended_ms == 0) {
      it->second.ended_ms = at;
    }
  }
  return out;
}

double total_cost(const std::map<std::string, Rented>& rented, int64_t until_ms) {
  double sum = 0;
  for (const auto& [id, r] : rented) sum += r.cost(until_ms);
  return sum;
}

// "videos[12]" -> {"videos", 12}; nullopt for a path that is not an item's.
std::optional<std::pair<std::string, size_t>> split_item_path(const std::string& path) {
  if (path.size() < 4 || path.back() != ']') return std::nullopt;
  const size_t open = path.rfind('[');
  if (open == std::string::npos || open == 0 || open + 2 > path.size() - 1) return std::nullopt;
  size_t index = 0;
  for (size_t i = open + 1; i + 1 < path.size(); ++i) {
    if (path[i] < '0' || path[i] > '9' || index > kMaxItems) return std::nullopt;
    index = index * 10 + static_cast<size_t>(path[i] - '0');
  }
  return std::make_pair(path.substr(0, open), index);
}

// The item of for_each `fe` that `path` lies in ("videos[2].gpu" in "videos" -> 2).
std::optional<size_t> item_under(const std::string& path, const std::string& fe) {
  if (path.size() <= fe.size() + 2 || path.compare(0, fe.size(), fe) != 0 || path[fe.size()] != '[')
    return std::nullopt;
  const size_t close = path.find(']', fe.size());
  if (close == std::string::npos || (close + 1 < path.size() && path[close + 1] != '.')) return std::nullopt;
  auto item = split_item_path(path.substr(0, close + 1));
  return item ? std::optional<size_t>(item->second) : std::nullopt;
}

Json number_or_null(const Json& state, const char* key) {
  const Json v = state.value(key, Json());
  return v.is_number() ? v : Json();
}

Json string_or_null(const Json& state, const char* key) {
  const Json v = state.value(key, Json());
  return v.is_string() ? v : v.is_number() ? Json(v.dump()) : Json();
}

// The first string output of `outputs` whose key ends in "url" (a result_url capture).
Json url_in(const Json& outputs) {
  if (!outputs.is_object()) return Json();
  for (const auto& [key, v] : outputs.items())
    if (key.size() >= 3 && key.compare(key.size() - 3, 3, "url") == 0 && v.is_string() && !v.get<std::string>().empty())
      return v;
  return Json();
}

Json run_json(const RunRow& run, double cost, int64_t now_ms) {
  return {{"id", run.id},
          {"workflow", run.workflow_name},
          {"workflow_path", run.workflow_path},
          {"status", run.status},
          {"started_ms", run.started_ms},
          {"updated_ms", run.updated_ms},
          {"duration_ms", std::max<int64_t>(0, end_of(run, now_ms) - run.started_ms)},
          {"error", run.error},
          {"cost", cost},
          {"owner_pid", run.owner_pid}};
}

struct StepView {
  Json row;      // as steps() gives it, outputs parsed
  Json outputs;  // parsed
};

// What one for_each shows: its items and their totals.
Json for_each_json(const std::string& fe, const RunRow& run, int64_t now_ms, const std::vector<StepView>& steps,
                   const std::map<std::string, const LiveRow*>& live, const std::map<std::string, Rented>& rented) {
  const int64_t until = end_of(run, now_ms);
  std::map<size_t, const StepView*> item_rows;
  std::map<size_t, std::vector<const StepView*>> under;  // the steps of each item, in seq order
  const StepView* own = nullptr;
  for (const auto& s : steps) {
    const std::string& path = s.row["path"].get_ref<const std::string&>();
    if (path == fe) own = &s;
    auto item = split_item_path(path);
    if (item && item->first == fe) {
      item_rows[item->second] = &s;
    } else if (auto i = item_under(path, fe)) {
      under[*i].push_back(&s);
    }
  }
  // How many items: the count the runner reported, its outputs once done, or the highest seen.
  size_t count = item_rows.empty() ? 0 : item_rows.rbegin()->first + 1;
  const Json fe_live = live.count(fe) ? live.at(fe)->state : Json::object();
  if (fe_live.value("items", Json()).is_number_unsigned()) count = std::max(count, fe_live["items"].get<size_t>());
  const Json fe_items = own ? own->outputs.value("items", Json()) : Json();
  if (own && own->outputs.value("count", Json()).is_number_unsigned())
    count = std::max(count, own->outputs["count"].get<size_t>());
  count = std::min(count, kMaxItems);

  std::map<size_t, double> item_cost;
  for (const auto& [id, r] : rented)
    if (auto i = item_under(r.path, fe)) item_cost[*i] += r.cost(until);

  Json totals = {{"items", count}, {"pending", 0},   {"running", 0}, {"succeeded", 0},
                 {"failed", 0},    {"cancelled", 0}, {"cost", 0.0}};
  Json items = Json::array();
  double cost_sum = 0;
  for (size_t i = 0; i < count; ++i) {
    const std::string path = fe + "[" + std::to_string(i) + "]";
    const auto row_it = item_rows.find(i);
    const Json* row = row_it == item_rows.end() ? nullptr : &row_it->second->row;
    const Json own_live = live.count(path) ? live.at(path)->state : Json::object();
    // The states of the item's steps, the latest reported last, so it wins.
    std::vector<const LiveRow*> inner;
    for (auto it = live.lower_bound(path + ".");
         it != live.end() && it->first.compare(0, path.size() + 1, path + ".") == 0; ++it)
      inner.push_back(it->second);
    std::stable_sort(inner.begin(), inner.end(),
                     [](const LiveRow* a, const LiveRow* b) { return a->updated_ms < b->updated_ms; });
    Json merged = Json::object();
    for (const LiveRow* l : inner) merged.merge_patch(l->state);

    std::string status = "pending";
    Json elapsed;
    if (row) {
      status = (*row)["status"].get<std::string>();
      if (status == to_string(StepState::kRunning) &&
          (!active(run) || own_live.value("status", "") == to_string(StepState::kCancelled)))
        status = to_string(StepState::kCancelled);
      const int64_t started = (*row)["started_ms"];
      const int64_t finished = (*row)["finished_ms"];
      const bool ended = status != to_string(StepState::kRunning) && status != to_string(StepState::kCancelled);
      elapsed = std::max<int64_t>(0, (ended && finished > 0 ? finished : until) - started);
    }
    if (status == to_string(StepState::kSucceeded) || status == to_string(StepState::kPartial) ||
        status == to_string(StepState::kSkipped))
      totals["succeeded"] = totals["succeeded"].get<int>() + 1;
    else if (totals.contains(status))
      totals[status] = totals[status].get<int>() + 1;

    Json item = own_live.value("item", Json());
    if (item.is_null() && fe_items.is_array() && i < fe_items.size()) item = fe_items[i].value("item", Json());
    Json result_url;
    for (const StepView* s : under[i])
      if (result_url = url_in(s->outputs); !result_url.is_null()) break;
    const double cost = item_cost.count(i) ? item_cost[i] : 0.0;
    cost_sum += cost;
    items.push_back({{"index", i},
                     {"path", path},
                     {"item", item},
                     {"status", status},
                     {"progress", number_or_null(merged, "progress")},
                     {"progress_text", string_or_null(merged, "progress_text")},
                     {"elapsed_ms", elapsed},
                     {"cost", cost},
                     {"result_url", result_url},
                     {"last_line", string_or_null(merged, "last_line")},
                     {"instance", string_or_null(merged, "instance")}});
  }
  totals["cost"] = cost_sum;
  return {{"path", fe}, {"totals", totals}, {"items", items}};
}

}  // namespace

Json runs_overview(Journal& journal, int limit, int64_t now_ms) {
  const std::vector<RunRow> runs = journal.recent_runs(limit);
  std::map<std::string, std::vector<Json>> events_by_run;
  for (auto& e : journal.events_of_recent_runs(limit, {"instance_started", "instance_destroyed"}))
    events_by_run[e.value("run_id", "")].push_back(std::move(e));
  Json list = Json::array();
  for (const auto& run : runs) {
    const double cost = total_cost(rented_instances(events_by_run[run.id]), end_of(run, now_ms));
    Json r = run_json(run, cost, now_ms);
    list.push_back({{"id", r["id"]},
                    {"workflow", r["workflow"]},
                    {"status", r["status"]},
                    {"started_ms", r["started_ms"]},
                    {"updated_ms", r["updated_ms"]},
                    {"duration_ms", r["duration_ms"]},
                    {"cost", r["cost"]},
                    {"error", r["error"]}});
  }
  return {{"runs", list}};
}

Json run_view(Journal& journal, const std::string& run_id, int64_t now_ms) {
  const std::optional<RunRow> run = journal.run(run_id);
  if (!run) return Json();
  const std::vector<Json> step_rows = journal.steps(run_id);
  const std::vector<Json> events = journal.events(run_id);
  const std::vector<LiveRow> live_rows = journal.live_states(run_id);
  const std::map<std::string, Rented> rented = rented_instances(events);
  const int64_t until = end_of(*run, now_ms);

  std::vector<StepView> steps;
  steps.reserve(step_rows.size());
  Json steps_json = Json::array();
  std::set<std::string> for_each_paths;
  for (const auto& r : step_rows) {
    StepView s{r, parsed(r.value("outputs", Json("{}")))};
    s.row["outputs"] = s.outputs;
    const std::string path = r.value("path", "");
    if (auto item = split_item_path(path)) for_each_paths.insert(item->first);
    const int64_t started = r.value("started_ms", int64_t{0});
    const int64_t finished = r.value("finished_ms", int64_t{0});
    Json duration;
    if (finished > 0)
      duration = std::max<int64_t>(0, finished - started);
    else if (r.value("status", "") == to_string(StepState::kRunning))
      duration = std::max<int64_t>(0, until - started);
    steps_json.push_back({{"path", path},
                          {"status", r.value("status", "")},
                          {"attempts", r.value("attempts", 0)},
                          {"started_ms", started},
                          {"finished_ms", finished},
                          {"duration_ms", duration},
                          {"error_kind", r.value("error_kind", "")},
                          {"error", r.value("error", "")},
                          {"outputs", s.outputs}});
    steps.push_back(std::move(s));
  }

  std::map<std::string, const LiveRow*> live;
  Json live_json = Json::object();
  for (const auto& l : live_rows) {
    live[l.path] = &l;
    live_json[l.path] = l.state;
    if (l.state.value("items", Json()).is_number_unsigned()) for_each_paths.insert(l.path);
  }

  Json events_json = Json::array();
  for (size_t i = events.size() > kEventsShown ? events.size() - kEventsShown : 0; i < events.size(); ++i) {
    const Json& e = events[i];
    events_json.push_back({{"at_ms", e.value("at_ms", int64_t{0})},
                           {"path", e.value("path", "")},
                           {"kind", e.value("kind", "")},
                           {"message", e.value("message", "")},
                           {"data", parsed(e.value("data", Json()))}});
  }

  Json for_each = Json::array();
  for (const auto& fe : for_each_paths) for_each.push_back(for_each_json(fe, *run, now_ms, steps, live, rented));

  return {{"run", run_json(*run, total_cost(rented, until), now_ms)},
          {"steps", steps_json},
          {"events", events_json},
          {"for_each", for_each},
          {"live", live_json}};
}

Json log_tail(Journal& journal, const std::string& run_id, const std::string& path) {
  const LiveRow* best = nullptr;
  const std::vector<LiveRow> rows = journal.live_states(run_id);
  for (const auto& l : rows) {
    if (!l.state.value("log_tail", Json()).is_array()) continue;
    if (l.path == path) return l.state["log_tail"];
    const bool below = l.path.size() > path.size() && l.path.compare(0, path.size(), path) == 0 &&
                       (l.path[path.size()] == '.' || l.path[path.size()] == '[');
    if (below && (!best || l.updated_ms >= best->updated_ms)) best = &l;
  }
  return best ? best->state["log_tail"] : Json::array();
}

}  // namespace flowrun
