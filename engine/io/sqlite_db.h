#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "engine/io/json.h"

struct sqlite3;
struct sqlite3_stmt;

namespace flowrun {

// An SQLite failure. The adapter's own error: step_api/sql_access turns it into a StepError
// (transient when the database is busy), the journal into a JournalError or its write hint.
class SqliteError : public std::runtime_error {
 public:
  explicit SqliteError(const std::string& what, int code = 1) : std::runtime_error(what), code_(code) {}
  // The SQLite result code (SQLITE_BUSY, SQLITE_CONSTRAINT, ...), primary part only.
  int code() const { return code_; }
  // Another connection holds the lock past the busy timeout: worth trying again.
  bool busy() const;

 private:
  int code_;
};

// One SQLite connection (RAII, move-only). Statements bind named or positional parameters from
// JSON values, never by splicing text. Not thread-safe: callers serialise access.
class SqliteDb {
 public:
  // Opens (creating when `create`) the database. Throws SqliteError naming the path.
  SqliteDb(const std::string& path, bool create);
  ~SqliteDb();
  SqliteDb(SqliteDb&& other) noexcept;
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  void exec(const std::string& sql);
  // Runs one statement with `params` (an array for ?, an object for :name, @name or $name) and
  // returns its rows as objects keyed by column name. A name the statement does not use is an
  // error, so a misspelt parameter is never silently bound to nothing.
  std::vector<Json> query(const std::string& sql, const Json& params = Json::array());
  // A parameter of write(): a number, or text bound where it is, without a copy.
  using Arg = std::variant<int64_t, std::string_view>;
  // Runs one statement that returns no rows, with positional `args` the caller keeps until it
  // returns: for rows whose text is large (a for_each's outputs at 10,000 items are MiBs),
  // which query() would first copy into JSON.
  void write(const std::string& sql, std::initializer_list<Arg> args);
  int64_t changes() const;
  // Rows the last query() inserted, updated or deleted; 0 for a read-only statement.
  int64_t statement_changes() const { return statement_changes_; }
  int64_t last_insert_rowid() const;
  bool in_transaction() const;
  const std::string& path() const { return path_; }
  // While another connection holds the lock, a caller on a fiber parks between tries instead of
  // sleeping its thread (for at most the same 5 s): the fiber holding the lock, on the same
  // thread, can then go on and commit. Only for a connection no other fiber uses and no caller
  // holds a lock around (the steps' databases, never the journal's).
  void park_fiber_when_busy();
  // The raw connection, for statements prepared once and run many times (sql_access.h).
  sqlite3* handle() const { return db_; }

 private:
  // The statement of `sql`, prepared once and kept (reset) for the next query of the same text.
  sqlite3_stmt* prepared(const std::string& sql);
  void finalize_all();

  sqlite3* db_ = nullptr;
  std::string path_;
  int64_t statement_changes_ = 0;
  // Compiling a statement cost more than running it (the journal's upsert of a step row: ~130,000
  // instructions to prepare, ~30,000 to run); bounded, since callers may build their SQL text.
  std::unordered_map<std::string, sqlite3_stmt*> statements_;
};

}  // namespace flowrun
