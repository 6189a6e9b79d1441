#include "engine/notify/outbox.h"

#include "engine/io/utf8.h"

namespace flowrun {
namespace {

constexpr const char* kSchema = R"SQL(
CREATE TABLE IF NOT EXISTS outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  delivery_key TEXT NOT NULL UNIQUE,
  run_id TEXT NOT NULL, channel TEXT NOT NULL, event TEXT NOT NULL, path TEXT NOT NULL,
  payload TEXT NOT NULL,
  target TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, next_ms INTEGER NOT NULL, last_error TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL, sent_ms INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(status, next_ms);
CREATE TABLE IF NOT EXISTS notify_targets (
  run_id TEXT NOT NULL, channel TEXT NOT NULL, target TEXT NOT NULL, PRIMARY KEY(run_id, channel));
)SQL";

constexpr const char* kColumns =
    "id, delivery_key, run_id, channel, event, path, payload, target, status, attempts, next_ms, last_error, "
    "created_ms, sent_ms";

Json parse_or_null(const Json& text) {
  if (!text.is_string()) return nullptr;
  try {
    return Json::parse(text.get<std::string>());
  } catch (const std::exception&) {
    return nullptr;
  }
}

OutboxRow row_of(const Json& r) {
  OutboxRow row;
  row.id = r["id"].get<int64_t>();
  row.delivery_key = r["delivery_key"];
  row.run_id = r["run_id"];
  row.channel = r["channel"];
  row.event = r["event"];
  row.path = r["path"];
  row.payload = parse_or_null(r["payload"]);
  row.target = parse_or_null(r["target"]);
  row.status = r["status"];
  row.attempts = r["attempts"].get<int>();
  row.next_ms = r["next_ms"].get<int64_t>();
  row.last_error = r["last_error"];
  row.created_ms = r["created_ms"].get<int64_t>();
  row.sent_ms = r["sent_ms"].get<int64_t>();
  return row;
}

std::vector<OutboxRow> rows_of(const std::vector<Json>& rows) {
  std::vector<OutboxRow> out;
  out.reserve(rows.size());
  for (const auto& r : rows) out.push_back(row_of(r));
  return out;
}

}  // namespace

Outbox::Outbox(const std::string& path) : db_(path, false) {
  MutexLock lock(mutex_);
  db_.exec(kSchema);
}

bool Outbox::enqueue(const OutboxRow& row) {
  MutexLock lock(mutex_);
  db_.query(
      "INSERT OR IGNORE INTO outbox (delivery_key, run_id, channel, event, path, payload, target, status, attempts, "
      "next_ms, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
      Json::array({row.delivery_key, row.run_id, row.channel, row.event, row.path, dump_json(row.payload),
                   dump_json(row.target), row.status, row.next_ms, row.created_ms}));
  return db_.statement_changes() > 0;
}

int Outbox::recent(const std::string& channel, const std::string& event, int64_t since_ms) {
  MutexLock lock(mutex_);
  auto rows = db_.query(
      "SELECT COUNT(*) AS n FROM outbox WHERE channel = ? AND event = ? AND status IN ('pending', 'sent') AND "
      "created_ms >= ?",
      Json::array({channel, event, since_ms}));
  return rows.empty() ? 0 : rows[0]["n"].get<int>();
}

int Outbox::count_of(const std::string& run_id, const std::string& path, const std::string& event,
                     const std::string& channel) {
  MutexLock lock(mutex_);
  auto rows = db_.query("SELECT COUNT(*) AS n FROM outbox WHERE run_id = ? AND path = ? AND event = ? AND channel = ?",
                        Json::array({run_id, path, event, channel}));
  return rows.empty() ? 0 : rows[0]["n"].get<int>();
}

int64_t Outbox::open_window(const std::string& run_id, const std::string& channel, int64_t now_ms) {
  MutexLock lock(mutex_);
  auto rows = db_.query(
      "SELECT MAX(next_ms) AS due FROM outbox WHERE run_id = ? AND channel = ? AND status = 'pending' AND attempts = 0 "
      "AND event IN ('item_failed', 'item_succeeded') AND next_ms > ?",
      Json::array({run_id, channel, now_ms}));
  return rows.empty() || !rows[0]["due"].is_number() ? 0 : rows[0]["due"].get<int64_t>();
}

std::vector<OutboxRow> Outbox::due(int64_t now_ms, int limit) {
  MutexLock lock(mutex_);
  return rows_of(db_.query(
      std::string("SELECT ") + kColumns + " FROM outbox WHERE status = 'pending' AND next_ms <= ? ORDER BY id LIMIT ?",
      Json::array({now_ms, limit})));
}

std::vector<OutboxRow> Outbox::pending_items(const std::string& run_id, const std::string& channel, int64_t until_ms) {
  MutexLock lock(mutex_);
  return rows_of(db_.query(std::string("SELECT ") + kColumns +
                               " FROM outbox WHERE status = 'pending' AND run_id = ? AND channel = ? AND event IN "
                               "('item_failed', 'item_succeeded') AND created_ms <= ? ORDER BY id LIMIT 500",
                           Json::array({run_id, channel, until_ms})));
}

bool Outbox::claim(int64_t id, int64_t expected_next_ms, int64_t lease_ms) {
  MutexLock lock(mutex_);
  db_.query("UPDATE outbox SET next_ms = ? WHERE id = ? AND status = 'pending' AND next_ms = ?",
            Json::array({lease_ms, id, expected_next_ms}));
  return db_.statement_changes() == 1;
}

void Outbox::mark(int64_t id, const std::string& status, int64_t sent_ms) {
  MutexLock lock(mutex_);
  db_.query("UPDATE outbox SET status = ?, sent_ms = ?, last_error = '' WHERE id = ?",
            Json::array({status, sent_ms, id}));
}

void Outbox::retry_later(int64_t id, int attempts, int64_t next_ms, const std::string& error) {
  MutexLock lock(mutex_);
  db_.query("UPDATE outbox SET attempts = ?, next_ms = ?, last_error = ? WHERE id = ? AND status = 'pending'",
            Json::array({attempts, next_ms, error, id}));
}

void Outbox::give_up(int64_t id, int attempts, const std::string& error) {
  MutexLock lock(mutex_);
  db_.query("UPDATE outbox SET status = 'failed', attempts = ?, last_error = ? WHERE id = ?",
            Json::array({attempts, error, id}));
}

void Outbox::due_by(const std::string& run_id, int64_t now_ms) {
  MutexLock lock(mutex_);
  db_.query("UPDATE outbox SET next_ms = ? WHERE run_id = ? AND status = 'pending' AND next_ms > ? AND attempts = 0",
            Json::array({now_ms, run_id, now_ms}));
}

void Outbox::all_due_by(int64_t now_ms) {
  MutexLock lock(mutex_);
  db_.query("UPDATE outbox SET next_ms = ? WHERE status = 'pending' AND next_ms > ?", Json::array({now_ms, now_ms}));
}

int Outbox::pending(const std::string& run_id) {
  MutexLock lock(mutex_);
  auto rows = run_id.empty() ? db_.query("SELECT COUNT(*) AS n FROM outbox WHERE status = 'pending'")
                             : db_.query("SELECT COUNT(*) AS n FROM outbox WHERE status = 'pending' AND run_id = ?",
                                         Json::array({run_id}));
  return rows.empty() ? 0 : rows[0]["n"].get<int>();
}

int64_t Outbox::forget_pruned_runs() {
  MutexLock lock(mutex_);
  db_.exec("BEGIN IMMEDIATE");
  try {
    db_.query("DELETE FROM outbox WHERE status != 'pending' AND run_id NOT IN (SELECT id FROM runs)");
    const int64_t removed = db_.statement_changes();
    db_.query(
        "DELETE FROM notify_targets WHERE run_id NOT IN (SELECT id FROM runs) "
        "AND run_id NOT IN (SELECT run_id FROM outbox WHERE status = 'pending')");
    db_.exec("COMMIT");
    return removed;
  } catch (...) {
    db_.exec("ROLLBACK");
    throw;
  }
}

std::vector<OutboxRow> Outbox::list(int limit) {
  MutexLock lock(mutex_);
  return rows_of(
      db_.query(std::string("SELECT ") + kColumns + " FROM outbox ORDER BY id DESC LIMIT ?", Json::array({limit})));
}

Json Outbox::remember_target(const std::string& run_id, const std::string& channel, const Json& target) {
  MutexLock lock(mutex_);
  db_.query("INSERT OR IGNORE INTO notify_targets (run_id, channel, target) VALUES (?, ?, ?)",
            Json::array({run_id, channel, dump_json(target)}));
  auto rows =
      db_.query("SELECT target FROM notify_targets WHERE run_id = ? AND channel = ?", Json::array({run_id, channel}));
  if (rows.empty()) return target;
  Json stored = parse_or_null(rows[0]["target"]);
  return stored.is_null() ? target : stored;
}

std::vector<Json> Outbox::targets_of(const std::string& run_id) {
  MutexLock lock(mutex_);
  std::vector<Json> out;
  for (const auto& row : db_.query("SELECT target FROM notify_targets WHERE run_id = ?", Json::array({run_id})))
    if (Json t = parse_or_null(row["target"]); !t.is_null()) out.push_back(std::move(t));
  return out;
}

}  // namespace flowrun
