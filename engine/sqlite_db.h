#pragma once
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/json.h"

struct sqlite3;
struct sqlite3_stmt;

namespace flowrun {

class SqliteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
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
  // Runs one statement with `params` (an array for ?, an object for :name) and returns its rows
  // as objects keyed by column name.
  std::vector<Json> query(const std::string& sql, const Json& params = Json::array());
  int64_t changes() const;
  const std::string& path() const { return path_; }

 private:
  sqlite3* db_ = nullptr;
  std::string path_;
};

}  // namespace flowrun
