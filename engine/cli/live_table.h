#pragma once
// The state of the for_each items of a run as the terminal's live table shows it, and its text.
// Fed from the recorder (steps started and finished, events, live patches) and from the items'
// log lines; not thread-safe (LiveTerminal holds the lock).
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "engine/io/clock.h"
#include "engine/io/json.h"
#include "engine/io/logging.h"

namespace flowrun {

// "videos[2]" for "videos[2].finally.cleanup": the innermost for_each item a path lies in (empty
// when none); `group`, when given, gets the for_each step's path ("videos").
std::string item_path_of(std::string_view path, std::string* group = nullptr);

struct LiveItem {
  std::string path;  // videos[2]
  int index = 0;
  std::string item;  // the item's value, safe text
  std::string status = "running";
  std::optional<double> progress;  // percent
  std::string progress_text, last_line, instance;
  double price_per_hour = 0;
  std::optional<TimePoint> billed_since, billed_until;
  TimePoint started{};
  int failed_steps = 0;
  double cost(TimePoint now) const;
};

class LiveTable {
 public:
  void step_started(const std::string& path, TimePoint now);
  void step_finished(const std::string& path, const std::string& status, TimePoint now);
  void event(const std::string& path, const std::string& kind, const Json& data, TimePoint now);
  void live(const std::string& path, const Json& patch, TimePoint now);
  // A console line of an item's step becomes its last line (a progress bar its progress). True
  // when the table shows what the line says (a progress bar, "still waiting"), so while the table
  // is on it need not scroll too.
  bool log_line(const ConsoleLine& line, TimePoint now);

  // Whether a for_each is running: the table has something to show.
  bool visible() const;
  // The table, at most `max_lines` lines (at least 2), each fitting `columns`.
  std::vector<std::string> render(TimePoint now, size_t columns, size_t max_lines) const;
  // One line for each item that ended since the last call, for the scroll above the table.
  std::vector<std::string> take_ended_lines(size_t columns);
  bool has_ended_lines() const { return !ended_lines_.empty(); }

 private:
  // A running for_each: its items in progress, and what is left of the ended ones (counts, cost).
  struct Group {
    std::map<int, LiveItem> items;  // by index
    std::set<int> ended;
    std::map<std::string, int> ended_by_status;
    double ended_cost = 0;
    TimePoint started{};
  };
  // The item `path` lies in, created (with its group) on first sight; null for a path in none.
  LiveItem* item_for(const std::string& path, TimePoint now);
  void end_item(Group& group, int index, const std::string& status, TimePoint now);

  std::map<std::string, Group> groups_;  // running for_each steps, by path
  std::vector<std::string> ended_lines_;
};

// "1:05", "1:02:03".
std::string format_elapsed(Duration d);
// "$0.042", "$12.40".
std::string format_cost(double dollars);

}  // namespace flowrun
