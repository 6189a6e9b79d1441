#pragma once
// What the `sql` step and Lua's flow.sql share: where a database file is, opening it, a
// transaction that rolls back unless committed, and SQLite errors as step errors.
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "engine/io/json.h"
#include "engine/io/sqlite_db.h"

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

// Statements (one or several, `;`-separated) compiled once and run for many rows of named
// parameters, so a chunk of thousands of rows pays for one prepare, not thousands. A row binds
// each :name (or @name, $name) the statements use from its key of that name, NULL when absent;
// with `allowed`, a statement using any other name is refused when compiled (a misspelt
// :custom_ic must not quietly bind NULL), and positional ? parameters always are.
class PreparedScript {
 public:
  PreparedScript(SqliteDb& db, const std::string& sql, const std::vector<std::string>* allowed);
  ~PreparedScript();
  PreparedScript(const PreparedScript&) = delete;
  PreparedScript& operator=(const PreparedScript&) = delete;
  // Runs every statement for `row` (an object), in order; returns the rows they changed.
  int64_t run(const Json& row);
  // The distinct parameter names the statements use (without their prefix), in first use order:
  // all a caller needs to put in a row.
  const std::vector<std::string>& names() const { return names_; }

 private:
  struct Compiled {
    sqlite3_stmt* stmt;
    std::vector<std::pair<int, std::string>> params;  // index, name without its prefix
  };
  SqliteDb& db_;
  std::vector<Compiled> statements_;
  std::vector<std::string> names_;
};

// Runs `body`, turning a SqliteError into a StepError: transient when the database is busy
// (another writer held it past the busy timeout), permanent otherwise (a bad statement, a
// constraint), each naming the file.
Json with_sql_errors(const std::filesystem::path& file, const std::function<Json()>& body);

}  // namespace flowrun
