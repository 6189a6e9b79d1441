#include "engine/io/sqlite_db.h"

#include <sqlite3.h>

#include <chrono>
#include <thread>
#include <utility>

#include "engine/io/cancel_token.h"
#include "engine/io/fiber_scheduler.h"
#include "engine/io/utf8.h"

namespace flowrun {
namespace {

struct Statement {
  sqlite3_stmt* stmt = nullptr;
  ~Statement() { sqlite3_finalize(stmt); }
};

void bind(sqlite3* db, sqlite3_stmt* stmt, int index, const Json& value) {
  int rc;
  if (value.is_null())
    rc = sqlite3_bind_null(stmt, index);
  else if (value.is_boolean())
    rc = sqlite3_bind_int(stmt, index, value.get<bool>() ? 1 : 0);
  else if (value.is_number_integer())
    rc = sqlite3_bind_int64(stmt, index, value.get<int64_t>());
  else if (value.is_number())
    rc = sqlite3_bind_double(stmt, index, value.get<double>());
  else if (value.is_string()) {
    // Not copied (SQLITE_STATIC): the parameters outlive the statement's steps, and query()
    // clears the bindings before it returns.
    const auto& s = value.get_ref<const std::string&>();
    rc = sqlite3_bind_text(stmt, index, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
  } else {
    std::string s = dump_json(value);
    rc = sqlite3_bind_text(stmt, index, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  if (rc != SQLITE_OK) throw SqliteError(std::string("cannot bind parameter: ") + sqlite3_errmsg(db));
}

// Back to its first row and without bindings whatever happens, ready for the next query (a
// statement left stepping would hold its read transaction open).
struct ResetAfter {
  sqlite3_stmt* stmt;
  ~ResetAfter() {
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
  }
};

[[noreturn]] void fail(sqlite3* db, const std::string& where) {
  throw SqliteError(where + ": " + sqlite3_errmsg(db), sqlite3_errcode(db) & 0xff);
}

}  // namespace

namespace {

constexpr int kBusyTimeoutMs = 5000;

// sqlite3_busy_handler: ten tries 5 ms apart, then 50 ms apart, kBusyTimeoutMs in all.
int park_between_tries(void*, int tries) {
  constexpr int kQuickTries = 10;
  if (tries >= kQuickTries + (kBusyTimeoutMs - kQuickTries * 5) / 50) return 0;
  const Duration pause = std::chrono::milliseconds(tries < kQuickTries ? 5 : 50);
  if (FiberScheduler* fibers = FiberScheduler::current()) {
    static const CancelToken never;  // a busy wait is short and bounded; cancellation waits for it
    fibers->sleep_until(fibers->clock().now() + pause, never);
  } else {
    std::this_thread::sleep_for(pause);
  }
  return 1;
}

}  // namespace

bool SqliteError::busy() const { return code_ == SQLITE_BUSY || code_ == SQLITE_LOCKED; }

SqliteDb::SqliteDb(const std::string& path, bool create) : path_(path) {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    throw SqliteError("cannot open " + path + ": " + msg, rc & 0xff);
  }
  sqlite3_busy_timeout(db_, kBusyTimeoutMs);
}

void SqliteDb::park_fiber_when_busy() { sqlite3_busy_handler(db_, park_between_tries, nullptr); }

SqliteDb::~SqliteDb() {
  finalize_all();
  if (db_) sqlite3_close(db_);
}

SqliteDb::SqliteDb(SqliteDb&& other) noexcept
    : db_(other.db_),
      path_(std::move(other.path_)),
      statement_changes_(other.statement_changes_),
      statements_(std::move(other.statements_)) {
  other.db_ = nullptr;
  other.statements_.clear();
}

void SqliteDb::finalize_all() {
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  statements_.clear();
}

sqlite3_stmt* SqliteDb::prepared(const std::string& sql) {
  if (auto it = statements_.find(sql); it != statements_.end()) return it->second;
  Statement st;
  const char* tail = nullptr;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st.stmt, &tail) != SQLITE_OK) fail(db_, path_);
  if (!st.stmt) throw SqliteError("the statement is empty");
  // A second statement would be silently ignored by prepare: refuse it instead (what follows may
  // only be blanks and comments, which compile to no statement).
  if (tail && *tail) {
    Statement rest;
    if (sqlite3_prepare_v2(db_, tail, -1, &rest.stmt, nullptr) != SQLITE_OK || rest.stmt)
      throw SqliteError("one statement at a time; this one goes on after the first ';': " +
                        std::string(tail).substr(0, 60));
  }
  constexpr size_t kMaxStatements = 64;
  if (statements_.size() >= kMaxStatements) finalize_all();
  sqlite3_stmt* stmt = std::exchange(st.stmt, nullptr);
  statements_.emplace(sql, stmt);
  return stmt;
}

void SqliteDb::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    throw SqliteError(path_ + ": " + msg, sqlite3_errcode(db_) & 0xff);
  }
}

std::vector<Json> SqliteDb::query(const std::string& sql, const Json& params) {
  sqlite3_stmt* stmt = prepared(sql);
  const ResetAfter reset{stmt};
  if (params.is_array()) {
    int i = 1;
    for (const auto& v : params) bind(db_, stmt, i++, v);
  } else if (params.is_object()) {
    for (const auto& [name, v] : params.items()) {
      int index = 0;
      for (const char* prefix : {":", "@", "$"})
        if (!index) index = sqlite3_bind_parameter_index(stmt, (prefix + name).c_str());
      if (index == 0) throw SqliteError("no parameter :" + name + " in the statement");
      bind(db_, stmt, index, v);
    }
  }
  std::vector<Json> rows;
  for (;;) {
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) fail(db_, path_);
    Json row = Json::object();
    int n = sqlite3_column_count(stmt);
    for (int c = 0; c < n; ++c) {
      const char* name = sqlite3_column_name(stmt, c);
      switch (sqlite3_column_type(stmt, c)) {
        case SQLITE_INTEGER:
          row[name] = static_cast<int64_t>(sqlite3_column_int64(stmt, c));
          break;
        case SQLITE_FLOAT:
          row[name] = sqlite3_column_double(stmt, c);
          break;
        case SQLITE_NULL:
          row[name] = nullptr;
          break;
        default: {
          const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, c));
          row[name] = std::string(text ? text : "", static_cast<size_t>(sqlite3_column_bytes(stmt, c)));
        }
      }
    }
    rows.push_back(std::move(row));
  }
  statement_changes_ = sqlite3_stmt_readonly(stmt) ? 0 : sqlite3_changes64(db_);
  return rows;
}

void SqliteDb::write(const std::string& sql, std::initializer_list<Arg> args) {
  sqlite3_stmt* stmt = prepared(sql);
  const ResetAfter reset{stmt};
  int index = 1;
  for (const Arg& arg : args) {
    int rc;
    if (const auto* text = std::get_if<std::string_view>(&arg))
      rc = sqlite3_bind_text(stmt, index++, text->data(), static_cast<int>(text->size()), SQLITE_STATIC);
    else
      rc = sqlite3_bind_int64(stmt, index++, std::get<int64_t>(arg));
    if (rc != SQLITE_OK) throw SqliteError(std::string("cannot bind parameter: ") + sqlite3_errmsg(db_));
  }
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
  }
  if (rc != SQLITE_DONE) fail(db_, path_);
  statement_changes_ = sqlite3_changes64(db_);
}

int64_t SqliteDb::changes() const { return sqlite3_changes64(db_); }

int64_t SqliteDb::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }

bool SqliteDb::in_transaction() const { return sqlite3_get_autocommit(db_) == 0; }

}  // namespace flowrun
