#pragma once
// What the `sql` step and Lua's flow.sql share: where a database file is, opening it, a
// transaction that rolls back unless committed, and SQLite errors as step errors.
#include <filesystem>
#include <functional>
#include <string>

#include "engine/json.h"
#include "engine/sqlite_db.h"

namespace flowrun {

class StepContext;

// `path` as given when absolute, else relative to the project root (as exec's cwd is).
std::filesystem::path project_path(const StepContext& ctx, const std::string& path);

// Opens the database; without `create`, a missing file is a permanent error naming the path
// (a typo must not quietly make an empty database).
SqliteDb open_database(const std::filesystem::path& file, bool create);

std::string read_sql_script(const std::filesystem::path& file);

// BEGIN IMMEDIATE on construction (when `active`), so the write lock is taken up front and two
// writers queue instead of failing half-way; ROLLBACK on destruction unless commit() was called.
class SqlTransaction {
 public:
  SqlTransaction(SqliteDb& db, bool active);
  ~SqlTransaction();
  SqlTransaction(const SqlTransaction&) = delete;
  SqlTransaction& operator=(const SqlTransaction&) = delete;
  void commit();

 private:
  SqliteDb& db_;
  bool open_;
};

// Runs `body`, turning a SqliteError into a StepError: transient when the database is busy
// (another writer held it past the busy timeout), permanent otherwise (a bad statement, a
// constraint), each naming the file.
Json with_sql_errors(const std::filesystem::path& file, const std::function<Json()>& body);

}  // namespace flowrun
