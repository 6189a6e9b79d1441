#include "engine/journal/journal.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <map>

#include "engine/io/fiber_scheduler.h"
#include "engine/io/redactor.h"
#include "engine/io/run_state.h"
#include "engine/io/signal_mask.h"
#include "engine/io/utf8.h"
#include "engine/step_api/live_patch.h"

namespace flowrun {
namespace {

constexpr int kSchemaVersion = 1;

const char* const kSchema = R"SQL(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY, workflow_path TEXT NOT NULL, workflow_name TEXT NOT NULL,
  content_hash TEXT NOT NULL, inputs TEXT NOT NULL, status TEXT NOT NULL, error TEXT NOT NULL DEFAULT '',
  started_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,
  owner_pid INTEGER NOT NULL DEFAULT 0, owner_host TEXT NOT NULL DEFAULT '', lease_until_ms INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS steps (
  run_id TEXT NOT NULL, path TEXT NOT NULL, seq INTEGER NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
  outputs TEXT NOT NULL DEFAULT '{}', error_kind TEXT NOT NULL DEFAULT '', error TEXT NOT NULL DEFAULT '',
  started_ms INTEGER NOT NULL, finished_ms INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (run_id, path));
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, at_ms INTEGER NOT NULL,
  path TEXT NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL, data TEXT NOT NULL DEFAULT 'null');
CREATE INDEX IF NOT EXISTS events_by_run ON events (run_id, id);
CREATE TABLE IF NOT EXISTS process_groups (
  run_id TEXT NOT NULL, pgid INTEGER NOT NULL, path TEXT NOT NULL, start_ticks TEXT NOT NULL,
  PRIMARY KEY (run_id, pgid));
)SQL";

// Live states (ExecutionRecorder::live): transient, read by `flowrun serve` and metrics.
const char* const kLiveSchema = R"SQL(
CREATE TABLE IF NOT EXISTS live (
  run_id TEXT NOT NULL, path TEXT NOT NULL, updated_ms INTEGER NOT NULL, state TEXT NOT NULL,
  PRIMARY KEY (run_id, path));
)SQL";

// Live states are written together, at most this often unless another write commits them
// sooner, and at most this long after their patch; or at once past kLiveWaitingMax bytes.
constexpr int64_t kLiveWriteMs = 1000;
constexpr size_t kLiveWaitingMax = 1 << 20;
// Group commit (JournalRecorder::gather_waiters): how long the writer waits for one more record
// before it commits, and for a burst at most.
constexpr int64_t kGatherQuietUs = 200;
constexpr int64_t kGatherMaxUs = 5000;
// Bounds of a live state: bytes of a string, lines of log_tail (or elements of any list), keys.
constexpr size_t kLiveTextMax = 400;
constexpr size_t kLiveListMax = 40;
constexpr size_t kLiveKeysMax = 32;

// At most `max` bytes of `text`, cut at a character boundary, valid UTF-8.
std::string bounded_text(std::string_view text, size_t max) {
  if (text.size() <= max) return valid_utf8(text);
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return valid_utf8(text.substr(0, cut));
}

// A redacted text (ours to keep) bounded: moved when it already fits and is valid UTF-8, as a
// live log line mostly is (20 of them a poll, for each of 10,000 monitors).
std::string bounded_text(std::string text, size_t max) {
  if (text.size() <= max && valid_utf8_prefix(text) == text.size()) return text;
  return bounded_text(std::string_view(text), max);
}

// `value` with every string redacted and bounded, every list cut to its last kLiveListMax
// elements and every object to kLiveKeysMax keys; nulls stay (they delete in a merge patch).
Json bounded_live(const Json& value, const Redactor& redactor, int depth = 0) {
  if (value.is_string()) return bounded_text(redactor.redact(value.get_ref<const std::string&>()), kLiveTextMax);
  if (depth > 3 && (value.is_object() || value.is_array())) return bounded_text(dump_json(value), kLiveTextMax);
  if (value.is_array()) {
    Json out = Json::array();
    const size_t from = value.size() > kLiveListMax ? value.size() - kLiveListMax : 0;
    for (size_t i = from; i < value.size(); ++i) out.push_back(bounded_live(value[i], redactor, depth + 1));
    return out;
  }
  if (value.is_object()) {
    // The fields live views know come first; other keys only while there is room.
    static const char* const kKnown[] = {"status",   "item",     "progress",       "progress_text", "last_line",
                                         "log_tail", "instance", "price_per_hour", "items"};
    Json out = Json::object();
    if (depth == 0)
      for (const char* key : kKnown)
        if (value.contains(key)) out[key] = bounded_live(value[key], redactor, depth + 1);
    for (const auto& [key, v] : value.items()) {
      if (out.size() >= kLiveKeysMax) break;
      if (!out.contains(key)) out[bounded_text(key, 64)] = bounded_live(v, redactor, depth + 1);
    }
    return out;
  }
  return value;
}

RunRow to_run(const Json& r) {
  RunRow run;
  run.id = r["id"];
  run.workflow_path = r["workflow_path"];
  run.workflow_name = r["workflow_name"];
  run.content_hash = r["content_hash"];
  run.inputs = Json::parse(r["inputs"].get<std::string>(), nullptr, false);
  run.status = r["status"];
  run.error = r["error"];
  run.started_ms = r["started_ms"];
  run.updated_ms = r["updated_ms"];
  run.owner_pid = r["owner_pid"];
  run.owner_host = r["owner_host"];
  run.lease_until_ms = r["lease_until_ms"];
  return run;
}

bool process_gone(int64_t pid) { return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH; }

// For the live states' schedule: a wall clock set back would hold them for as long.
int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string this_host() {
  char name[256] = {0};
  gethostname(name, sizeof name - 1);
  return name;
}

std::string content_hash(const std::string& text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::unique_ptr<Journal> Journal::open(const std::filesystem::path& state_dir) {
  std::error_code ec;
  // The journal holds what steps printed and returned: readable by its owner only.
  if (!std::filesystem::exists(state_dir)) {
    std::filesystem::create_directories(state_dir, ec);
    if (!ec) std::filesystem::permissions(state_dir, std::filesystem::perms::owner_all, ec);
  }
  if (ec) throw JournalError("cannot create the state directory " + state_dir.string() + ": " + ec.message());
  auto file = (state_dir / "journal.db").string();
  bool existed = std::filesystem::exists(file);
  if (!existed) {
    // SQLite gives its WAL and SHM files the mode of the database file.
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) ::close(fd);
  }
  for (const char* suffix : {"", "-wal", "-shm"}) ::chmod((file + suffix).c_str(), 0600);  // older journals were 0644
  try {
    SqliteDb db(file, !existed);
    if (existed) {
      // Reading the schema fails on a file that is not a database; quick_check finds damage.
      auto check = db.query("PRAGMA quick_check");
      if (check.empty() || check[0].begin().value() != "ok")
        throw SqliteError(check.empty() ? "quick_check returned nothing" : dump_json(check[0].begin().value()));
    }
    // A page cache of 256 KiB, not SQLite's 2 MiB: the journal is written near its end and read
    // rarely (the OS caches the file), and its writer thread's cache stayed full for the run:
    // 2.5 MiB of 10,000 polling monitors' 93. Per-step cost did not move (bench/bench.py --only steps).
    db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-256;");
    db.exec(kSchema);
    // Journals of flowrun before 0.3 have events without details.
    if (db.query("SELECT 1 FROM pragma_table_info('events') WHERE name = 'data'").empty())
      db.exec("ALTER TABLE events ADD COLUMN data TEXT NOT NULL DEFAULT 'null'");
    db.exec(kLiveSchema);
    // "interrupted" was the name of detached before flowrun 0.2.
    db.query("UPDATE runs SET status = ? WHERE status = 'interrupted'", {to_string(RunState::kDetached)});
    auto version = db.query("SELECT value FROM meta WHERE key = 'schema_version'");
    if (version.empty()) {
      db.query("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", {std::to_string(kSchemaVersion)});
    } else {
      const std::string text =
          version[0]["value"].is_string() ? version[0]["value"].get<std::string>() : dump_json(version[0]["value"]);
      int found = 0;
      auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), found);
      if (err != std::errc() || end != text.data() + text.size() || found < 1)
        throw JournalError(
            "the journal " + file + " has a schema_version that is not a version number ('" +
            valid_utf8(text.substr(0, 40)) +
            "'); it was left untouched: move it aside (or point --state-dir elsewhere) to start a new one");
      if (found > kSchemaVersion)
        throw JournalError("the journal " + file + " was written by a newer flowrun (schema " + text +
                           "); use that version");
    }
    return std::unique_ptr<Journal>(new Journal(std::move(db)));
  } catch (const SqliteError& e) {
    throw JournalError("the journal " + file + " cannot be used: " + e.what() +
                       ". It was left untouched; move it aside (or point --state-dir elsewhere) to start a new one.");
  }
}

void Journal::create_run(const RunRow& run) {
  MutexLock lock(mutex_);
  commit_waiting_locked();
  db_.query(
      "INSERT INTO runs (id, workflow_path, workflow_name, content_hash, inputs, status, started_ms, updated_ms) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      {run.id, run.workflow_path, run.workflow_name, run.content_hash, dump_json(run.inputs), run.status,
       run.started_ms, run.started_ms});
}

std::optional<RunRow> Journal::run(const std::string& id) {
  MutexLock lock(mutex_);
  commit_waiting_locked();
  auto rows = db_.query("SELECT * FROM runs WHERE id = ?", {id});
  if (rows.empty()) return std::nullopt;
  return to_run(rows[0]);
}

std::vector<RunRow> Journal::recent_runs(int limit) {
  MutexLock lock(mutex_);
  commit_waiting_locked();
  std::vector<RunRow> out;
  for (const auto& r : db_.query("SELECT * FROM runs ORDER BY started_ms DESC, id DESC LIMIT ?", {limit}))
    out.push_back(to_run(r));
  return out;
}

void Journal::set_run_status(const std::string& id, const std::string& status, const std::string& error) {
  MutexLock lock(mutex_);
  commit_waiting_locked();
  db_.query("UPDATE runs SET status = ?, error = ?, updated_ms = ? WHERE id = ?",
            {status, valid_utf8(error), wall_clock_ms(), id});
}

int64_t Journal::prune_finished_runs(const std::string& workflow_path, int keep) {
  MutexLock lock(mutex_);
  commit_waiting_locked();
  db_.exec("BEGIN IMMEDIATE");
  try {
    const char* const kOld =
        "SELECT id FROM runs WHERE workflow_path = :path AND status IN (:succeeded, :failed, :partial, :cancelled) "
        "ORDER BY started_ms DESC, id DESC LIMIT -1 OFFSET :keep";
    const Json params = {{"path", workflow_path},
                         {"keep", keep},
                         {"succeeded", to_string(RunState::kSucceeded)},
                         {"failed", to_string(RunState::kFailed)},
                         {"partial", to_string(RunState::kPartial)},
                         {"cancelled", to_string(RunState::kCancelled)}};
    db_.query(std::string("DELETE FROM events WHERE run_id IN (") + kOld + ")", params);
    db_.query(std::string("DELETE FROM live WHERE run_id IN (") + kOld + ")", params);
    db_.query(std::string("DELETE FROM steps WHERE run_id IN (") + kOld + ")", params);
    db_.query(std::string("DELETE FROM runs WHERE id IN (") + kOld + ")", params);
    const int64_t removed = db_.statement_changes();
    db_.exec("COMMIT");
    return removed;
  } catch (...) {
    db_.exec("ROLLBACK");
    throw;
  }
}

std::vector<Json> Journal::steps(const std::string& run_id) {
  MutexLock lock(mutex_);
  commit_waiting_locked();
  return db_.query("SELECT * FROM steps WHERE run_id = ? ORDER BY seq", {run_id});
}

std::vector<Json> Journal::events(const std::string& run_id) {
  MutexLock lock(mutex_);
  commit_waiting_locked();
  return db_.query("SELECT * FROM events WHERE run_id = ? ORDER BY id", {run_id});
}

std::vector<Json> Journal::events_of_recent_runs(int limit, const std::vector<std::string>& kinds) {
  MutexLock lock(mutex_);
  commit_waiting_locked();
  Json params = Json::array({limit});
  std::string marks;
  for (const auto& k : kinds) {
    marks += marks.empty() ? "?" : ", ?";
    params.push_back(k);
  }
  if (marks.empty()) return {};
  return db_.query(
      "SELECT * FROM events WHERE run_id IN (SELECT id FROM runs ORDER BY started_ms DESC, id DESC LIMIT ?) "
      "AND kind IN (" +
          marks + ") ORDER BY id",
      params);
}

Json Journal::live_state_locked(const std::string& run_id, const std::string& path) {
  std::string text;
  if (auto it = live_waiting_.find({run_id, path}); it != live_waiting_.end()) {
    text = it->second.second;
  } else {
    auto rows = db_.query("SELECT state FROM live WHERE run_id = ? AND path = ?", {run_id, path});
    if (rows.empty()) return Json::object();
    text = rows[0]["state"].get<std::string>();
  }
  Json state = Json::parse(text, nullptr, false);
  return state.is_object() ? state : Json::object();
}

std::vector<LiveRow> Journal::live_states(const std::string& run_id) {
  MutexLock lock(mutex_);
  commit_waiting_locked();
  std::vector<LiveRow> out;
  for (const auto& r : db_.query("SELECT path, updated_ms, state FROM live WHERE run_id = ? ORDER BY path", {run_id})) {
    Json state = Json::parse(r["state"].get<std::string>(), nullptr, false);
    out.push_back({r["path"], r["updated_ms"], state.is_object() ? state : Json::object()});
  }
  return out;
}

Journal::Claim Journal::try_acquire(const std::string& run_id, int64_t pid, const std::string& host, int64_t lease_ms) {
  MutexLock lock(mutex_);
  commit_waiting_locked();
  db_.exec("BEGIN IMMEDIATE");  // a second process waits here (busy timeout) instead of racing
  try {
    auto rows = db_.query("SELECT owner_pid, owner_host, lease_until_ms FROM runs WHERE id = ?", {run_id});
    if (rows.empty()) {
      db_.exec("ROLLBACK");
      throw JournalError("no run " + run_id + " in the journal");
    }
    int64_t owner = rows[0]["owner_pid"];
    std::string owner_host = rows[0]["owner_host"];
    int64_t until = rows[0]["lease_until_ms"];
    bool held = owner != 0 && until > wall_clock_ms() && !(owner == pid && owner_host == host);
    if (held && owner_host == host && process_gone(owner)) held = false;
    if (held) {
      db_.exec("ROLLBACK");
      return {false, "pid " + std::to_string(owner) + " on " + owner_host};
    }
    db_.query("UPDATE runs SET owner_pid = ?, owner_host = ?, lease_until_ms = ? WHERE id = ?",
              {pid, host, wall_clock_ms() + lease_ms, run_id});
    db_.exec("COMMIT");
    return {true, {}};
  } catch (const SqliteError&) {
    db_.exec("ROLLBACK");
    throw;
  }
}

void Journal::renew(const std::string& run_id, int64_t pid, int64_t lease_ms) {
  MutexLock lock(mutex_);
  commit_waiting_locked();
  db_.query("UPDATE runs SET lease_until_ms = ? WHERE id = ? AND owner_pid = ?",
            {wall_clock_ms() + lease_ms, run_id, pid});
}

void Journal::release(const std::string& run_id, int64_t pid) {
  MutexLock lock(mutex_);
  commit_waiting_locked();
  db_.query("UPDATE runs SET owner_pid = 0, owner_host = '', lease_until_ms = 0 WHERE id = ? AND owner_pid = ?",
            {run_id, pid});
}

void Journal::record_process_group(const std::string& run_id, const std::string& path, int64_t pgid,
                                   const std::string& start_ticks) {
  MutexLock lock(mutex_);
  commit_waiting_locked([&]() REQUIRES(mutex_) {
    db_.query("INSERT OR REPLACE INTO process_groups (run_id, pgid, path, start_ticks) VALUES (?, ?, ?, ?)",
              {run_id, pgid, path, start_ticks});
  });
}

void Journal::clear_process_group(const std::string& run_id, int64_t pgid) {
  MutexLock lock(mutex_);
  commit_waiting_locked();
  db_.query("DELETE FROM process_groups WHERE run_id = ? AND pgid = ?", {run_id, pgid});
}

std::vector<ProcessGroupRow> Journal::process_groups(const std::string& run_id) {
  MutexLock lock(mutex_);
  commit_waiting_locked();
  std::vector<ProcessGroupRow> out;
  for (const auto& r :
       db_.query("SELECT path, pgid, start_ticks FROM process_groups WHERE run_id = ? ORDER BY pgid", {run_id}))
    out.push_back({r["path"], r["pgid"], r["start_ticks"]});
  return out;
}

void Journal::commit_waiting_locked(const std::function<void()>& also) {
  if (waiting_.empty() && events_waiting_.empty() && live_waiting_.empty() && !also) return;
  db_.exec("BEGIN IMMEDIATE");
  try {
    std::map<std::string, int64_t> last_change;  // run id -> newest row time
    for (const auto& r : waiting_) {
      db_.write(
          "INSERT INTO steps (run_id, path, seq, status, attempts, outputs, error_kind, error, started_ms, "
          "finished_ms) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
          "ON CONFLICT (run_id, path) DO UPDATE SET status = excluded.status, attempts = excluded.attempts, "
          "outputs = excluded.outputs, error_kind = excluded.error_kind, error = excluded.error, "
          "finished_ms = excluded.finished_ms",
          {r.run_id, r.path, r.seq, r.status, int64_t{r.attempts}, *r.outputs, r.error_kind, r.error, r.started_ms,
           r.finished_ms});
      auto& t = last_change[r.run_id];
      t = std::max({t, r.started_ms, r.finished_ms});
    }
    for (const auto& e : events_waiting_)
      db_.query("INSERT INTO events (run_id, at_ms, path, kind, message, data) VALUES (?, ?, ?, ?, ?, ?)",
                {e.run_id, e.at_ms, e.path, e.kind, e.message, e.data});
    if (also) also();
    if (!live_waiting_.empty()) live_written_at_ = steady_ms();
    for (const auto& [key, row] : live_waiting_)
      db_.query(
          "INSERT INTO live (run_id, path, updated_ms, state) VALUES (?, ?, ?, ?) "
          "ON CONFLICT (run_id, path) DO UPDATE SET updated_ms = excluded.updated_ms, state = excluded.state",
          {key.first, key.second, row.first, row.second});
    for (const auto& [run_id, ms] : last_change)
      db_.query("UPDATE runs SET updated_ms = MAX(updated_ms, ?) WHERE id = ?", {ms, run_id});
    db_.exec("COMMIT");
    ++commits_;
  } catch (...) {
    try {
      db_.exec("ROLLBACK");
    } catch (...) {
      // Already rolled back by SQLite (a full disk, say): nothing to undo.
    }
    throw;
  }
  waiting_.clear();
  events_waiting_.clear();
  live_waiting_.clear();
  live_waiting_bytes_ = 0;
}

uint64_t Journal::commits() {
  MutexLock lock(mutex_);
  return commits_;
}

Journal::~Journal() {
  try {
    MutexLock lock(mutex_);
    commit_waiting_locked();
  } catch (...) {
    // Lost records are of side-effect-free steps: a resume runs them again.
  }
}

// The run's only writer (its lease says so), so it keeps the run's step rows in memory: what a
// resume asks (recorded, started_under) costs no query, and a row's seq is a counter.
class JournalRecorder final : public ExecutionRecorder {
 public:
  JournalRecorder(Journal& journal, std::string run_id, const Redactor& redactor)
      : journal_(journal), run_id_(std::move(run_id)), redactor_(redactor) {
    MutexLock lock(journal_.mutex_);
    journal_.commit_waiting_locked();
    for (const auto& r : journal_.db_.query("SELECT * FROM steps WHERE run_id = ?", {run_id_})) {
      KeptRow row;
      row.seq = r["seq"];
      row.status = r["status"];
      row.attempts = static_cast<int>(r["attempts"].get<int64_t>());
      row.outputs = std::make_shared<const std::string>(r["outputs"].get<std::string>());
      row.set_error(r["error_kind"], r["error"]);
      row.started_ms = r["started_ms"];
      row.finished_ms = r["finished_ms"];
      next_seq_ = std::max(next_seq_, row.seq + 1);
      rows_.emplace(r["path"].get<std::string>(), std::move(row));
    }
    NoSignalsForNewThreads quiet;  // SIGINT and SIGTERM stay for the process's SignalWatcher
    writer_ = std::thread([this] { write_waiting(); });
  }

  std::optional<RecordedStep> recorded(const std::string& path) override {
    MutexLock lock(journal_.mutex_);
    auto it = rows_.find(path);
    if (it == rows_.end()) return std::nullopt;
    const KeptRow& row = it->second;
    RecordedStep s;
    s.status = row.status;
    s.outputs = Json::parse(*row.outputs, nullptr, false);
    s.error = row.error ? row.error->message : "";
    s.attempts = row.attempts;
    s.started_ms = row.started_ms;
    return s;
  }

  bool started_under(const std::string& path) override {
    MutexLock lock(journal_.mutex_);
    auto has_prefix = [this](const std::string& prefix) REQUIRES(journal_.mutex_) {
      auto it = rows_.lower_bound(prefix);
      return it != rows_.end() && it->first.compare(0, prefix.size(), prefix) == 0;
    };
    return rows_.count(path) > 0 || has_prefix(path + ".") || has_prefix(path + "[");
  }

  void step_started(const std::string& path, int attempt) override {
    {
      MutexLock lock(journal_.mutex_);
      auto& [key, row] = *row_for(path, wall_clock_ms());
      row.status = to_string(
          StepState::kRunning);  // the first start is kept across attempts and resumes: a timeout runs from it
      row.attempts = attempt;
      queue(key, row);
    }
    commit_together();
  }

  void step_finished(const std::string& path, const std::string& status, int attempts, const Json& outputs,
                     const std::string& error_kind, const std::string& error, Durability durability) override {
    // Outputs and messages hold bytes from outside: stored as valid UTF-8, so reading them back
    // as JSON and printing them never throws.
    auto redacted_outputs = std::make_shared<const std::string>(redactor_.redact_json_text(outputs));
    std::string redacted_error = valid_utf8(redactor_.redact(error));
    {
      MutexLock lock(journal_.mutex_);
      const int64_t now = wall_clock_ms();
      auto& [key, row] = *row_for(path, now);
      row.status = status;
      row.attempts = attempts;
      row.outputs = std::move(redacted_outputs);
      row.set_error(error_kind, std::move(redacted_error));
      row.finished_ms = now;
      queue(key, row);
    }
    if (durability == Durability::kNow) commit_together();
  }

  void event(const std::string& path, const std::string& kind, const std::string& message, const Json& data) override {
    std::string redacted = valid_utf8(redactor_.redact(message));
    std::string redacted_data = redactor_.redact_json_text(data);
    {
      MutexLock lock(journal_.mutex_);
      journal_.events_waiting_.push_back(
          {run_id_, wall_clock_ms(), path, kind, std::move(redacted), std::move(redacted_data)});
    }
    commit_together();
  }

  // Merged with the path's state; the row waits to be written with the others (kLiveWriteMs):
  // 4,000 monitors polling every 10 s were 400 commits a second, 14% of flowrun's CPU. The
  // state itself is not kept here: every running monitor has one for as long as it waits (a
  // 20-line log tail), and the journal has it already. A patch that replaces every member (a
  // poller's that read a whole tail) needs no old state; any other reads it back (a poll of a
  // few lines: the waiting text, else the row).
  void live(const std::string& path, const Json& patch) override {
    if (!patch.is_object() || patch.empty()) return;
    Json bounded = bounded_live(patch, redactor_);
    MutexLock lock(journal_.mutex_);
    std::vector<std::string>& members = live_members_[path];
    Json state = Json::object();
    if (!replaces_all(bounded, members)) state = journal_.live_state_locked(run_id_, path);
    merge_live_patch(state, std::move(bounded), kLiveListMax);
    if (state.size() > kLiveKeysMax) state = bounded_live(state, redactor_);
    members.clear();
    for (const auto& [key, value] : state.items()) members.push_back(key);
    auto& waiting = journal_.live_waiting_[{run_id_, path}];
    journal_.live_waiting_bytes_ -= waiting.second.size();
    waiting = {wall_clock_ms(), dump_json(state)};
    journal_.live_waiting_bytes_ += waiting.second.size();
    if (steady_ms() - journal_.live_written_at_ >= kLiveWriteMs || journal_.live_waiting_bytes_ > kLiveWaitingMax) {
      journal_.commit_waiting_locked();
    } else if (journal_.live_waiting_.size() == 1) {
      writer_wake_.notify_one();  // the first to wait: the writer's timer starts
    }
  }

  // What is still waiting (the last live states) is written when the run's recorder goes.
  ~JournalRecorder() override {
    {
      MutexLock lock(journal_.mutex_);
      stopping_ = true;
    }
    writer_wake_.notify_one();
    writer_.join();
    try {
      MutexLock lock(journal_.mutex_);
      journal_.commit_waiting_locked();
    } catch (...) {
      // Live states are transient. Rows and events left waiting are those of side-effect-free
      // steps, or of a durable write whose commit failed and was reported to its caller.
    }
  }

  void process_started(const std::string& path, int64_t pgid, const std::string& start_ticks) override {
    journal_.record_process_group(run_id_, path, pgid, start_ticks);
  }

  void process_ended(const std::string&, int64_t pgid) override { journal_.clear_process_group(run_id_, pgid); }

 private:
  // A caller of commit_together() waiting for the writer's commit.
  struct CommitWaiter {
    std::function<void()> done;
    std::exception_ptr* error;
  };

  // A step's row as the recorder keeps it, under its path: what the journal's row holds but the
  // run id, with its outputs shared with the copy waiting for a commit and its error (rare) out
  // of line. 10,000 waiting items have 20,000 rows: ~170 bytes each, not ~300.
  struct KeptRow {
    struct Error {
      std::string kind;
      std::string message;  // redacted
    };
    int64_t seq = 0;
    int64_t started_ms = 0;
    int64_t finished_ms = 0;
    int attempts = 0;
    std::string status;
    std::shared_ptr<const std::string> outputs;  // JSON, redacted
    std::unique_ptr<const Error> error;          // none when both are empty

    void set_error(std::string kind, std::string message) {
      error.reset();
      if (!kind.empty() || !message.empty()) error.reset(new Error{std::move(kind), std::move(message)});
    }
  };

  // A row of rows_ to write with the next commit, whole: with its path and the run's id.
  void queue(const std::string& path, const KeptRow& row) REQUIRES(journal_.mutex_) {
    Journal::StepRow out;
    out.run_id = run_id_;
    out.path = path;
    out.seq = row.seq;
    out.status = row.status;
    out.attempts = row.attempts;
    out.outputs = row.outputs;
    if (row.error) {
      out.error_kind = row.error->kind;
      out.error = row.error->message;
    }
    out.started_ms = row.started_ms;
    out.finished_ms = row.finished_ms;
    journal_.waiting_.push_back(std::move(out));
  }

  // Returns once what waits (this caller's record with the rest) is committed; rethrows the
  // commit's error. On a fiber, the writer thread commits for every fiber waiting at that
  // moment: 10,000 items starting at once each wrote a durable row, 10,000 commits, and now
  // share a few (the fiber parks, and the next one runs up to its own record). A plain thread
  // commits itself: nothing else of its own could run while it waited, so the gathering would
  // only add its 200 µs.
  void commit_together() EXCLUDES(journal_.mutex_) {
    FiberScheduler* const fibers = FiberScheduler::current();
    if (!fibers) {
      MutexLock lock(journal_.mutex_);
      journal_.commit_waiting_locked();
      return;
    }
    // On the heap, as the writer writes it: the waiting frames are saved and their stack given
    // back (10,000 items starting at once each wait here, 40 MiB of stack pages otherwise).
    const auto error = std::make_unique<std::exception_ptr>();
    fibers->await(
        [&](std::function<void()> done) {
          MutexLock lock(journal_.mutex_);
          if (!stopping_) {
            commit_waiters_.push_back({std::move(done), error.get()});
            if (commit_waiters_.size() == 1) writer_wake_.notify_one();
            return;
          }
          try {  // the destructor has begun: the writer takes no more waiters, so commit here
            journal_.commit_waiting_locked();
          } catch (...) {
            *error = std::current_exception();
          }
          lock.unlock();
          done();
        },
        FiberScheduler::WhileParked::kSaveFrames);
    if (*error) std::rethrow_exception(*error);
  }

  // Waits while more records come to wait for a commit: a burst (a for_each starting its items)
  // is committed at once when it pauses, or after kGatherMaxUs. A lone record waits
  // kGatherQuietUs. Without this the writer committed each record as it came, while the fibers'
  // thread waited for the mutex and could queue nothing: two rows a commit.
  void gather_waiters(MutexLock& lock) REQUIRES(journal_.mutex_) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(kGatherMaxUs);
    size_t seen = 0;
    while (commit_waiters_.size() > seen && !stopping_ && std::chrono::steady_clock::now() < until) {
      seen = commit_waiters_.size();
      lock.wait_for(writer_wake_, std::chrono::microseconds(kGatherQuietUs),
                    [this]() REQUIRES(journal_.mutex_) { return stopping_; });
    }
  }

  // One commit for everyone waiting in commit_together(); each learns how it went from
  // let_go(), called without the mutex: done() wakes a fiber or a thread, which may come
  // straight back for it.
  std::vector<CommitWaiter> commit_for_waiters(std::exception_ptr& error) REQUIRES(journal_.mutex_) {
    std::vector<CommitWaiter> batch;
    batch.swap(commit_waiters_);
    try {
      journal_.commit_waiting_locked();
    } catch (...) {
      error = std::current_exception();
    }
    return batch;
  }
  static void let_go(std::vector<CommitWaiter>& batch, const std::exception_ptr& error) {
    for (auto& w : batch) {
      *w.error = error;  // before done(): the waiter's frame may go as soon as it is called
      w.done();
    }
  }

  // The row of `path`, made (with the next seq, started now) the first time it is asked for.
  std::map<std::string, KeptRow>::iterator row_for(const std::string& path, int64_t now) REQUIRES(journal_.mutex_) {
    static const auto kNoOutputs = std::make_shared<const std::string>("{}");
    auto [it, made] = rows_.try_emplace(path);
    if (made) {
      it->second.seq = next_seq_++;
      it->second.outputs = kNoOutputs;
      it->second.started_ms = now;
    }
    return it;
  }

  Journal& journal_;
  std::string run_id_;
  const Redactor& redactor_;
  // Ordered for prefixes; without run_id (queue() adds it).
  std::map<std::string, KeptRow> rows_ GUARDED_BY(journal_.mutex_);
  // Whether merging `patch` gives the same state whatever the old one held: it names every
  // member, and merges no object into one (nor lines into log_tail: log_tail_added is no member).
  static bool replaces_all(const Json& patch, const std::vector<std::string>& members) {
    for (const auto& name : members) {
      auto it = patch.find(name);
      if (it == patch.end() || it->is_object()) return false;
    }
    return true;
  }
  // The recorder's writer: commits at once for those waiting in commit_together(), and writes
  // the live states that wait kLiveWriteMs after the last write of them at most, when no other
  // commit took them along sooner. Runs until the recorder goes.
  void write_waiting() {
    MutexLock lock(journal_.mutex_);
    auto asked = [this]() REQUIRES(journal_.mutex_) { return stopping_ || !commit_waiters_.empty(); };
    while (true) {
      if (!commit_waiters_.empty()) {
        gather_waiters(lock);
        std::exception_ptr error;
        std::vector<CommitWaiter> batch = commit_for_waiters(error);
        lock.unlock();
        let_go(batch, error);
        lock.lock();
        continue;
      }
      if (stopping_) return;
      if (journal_.live_waiting_.empty()) {
        // Woken by the first state to wait; and each second anyway, should another run's
        // recorder have left states waiting (its last commit failed).
        lock.wait_for(writer_wake_, std::chrono::milliseconds(kLiveWriteMs),
                      [&]() REQUIRES(journal_.mutex_) { return asked() || !journal_.live_waiting_.empty(); });
        continue;
      }
      const int64_t due_in = journal_.live_written_at_ + kLiveWriteMs - steady_ms();
      if (due_in > 0) {
        lock.wait_for(writer_wake_, std::chrono::milliseconds(due_in), asked);
        continue;
      }
      try {
        journal_.commit_waiting_locked();
      } catch (...) {
        // A full disk, say: the states wait on, and are tried again a second later.
        journal_.live_written_at_ = steady_ms();
      }
    }
  }

  std::map<std::string, std::vector<std::string>> live_members_ GUARDED_BY(journal_.mutex_);  // of each state
  int64_t next_seq_ GUARDED_BY(journal_.mutex_) = 1;
  std::vector<CommitWaiter> commit_waiters_ GUARDED_BY(journal_.mutex_);
  std::condition_variable writer_wake_;  // a commit or a live state waits, or the recorder stops
  bool stopping_ GUARDED_BY(journal_.mutex_) = false;
  std::thread writer_;  // write_waiting, started by the constructor once the rest is made
};

std::unique_ptr<ExecutionRecorder> Journal::recorder(const std::string& run_id, const Redactor& redactor) {
  return std::make_unique<JournalRecorder>(*this, run_id, redactor);
}

RunLease::RunLease(Journal& journal, std::string run_id)
    : journal_(journal), run_id_(std::move(run_id)), pid_(::getpid()) {
  const Journal::Claim claim = journal_.try_acquire(run_id_, pid_, this_host(), kLeaseMs);
  if (!claim.taken)
    throw JournalError("run " + run_id_ + " is owned by " + claim.holder +
                       "; it is still running there (a run has one owner at a time)");
  heartbeat_ = std::thread([this] {
    MutexLock lock(mutex_);
    while (
        !lock.wait_for(cv_, std::chrono::milliseconds(kLeaseMs / 3), [this]() REQUIRES(mutex_) { return stopping_; })) {
      lock.unlock();
      try {
        journal_.renew(run_id_, pid_, kLeaseMs);
      } catch (...) {
        // A failed renewal is retried at the next beat; the lease is long enough for that.
      }
      lock.lock();
    }
  });
}

RunLease::~RunLease() {
  {
    MutexLock lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  heartbeat_.join();
  try {
    journal_.release(run_id_, pid_);
  } catch (...) {
  }
}

}  // namespace flowrun
