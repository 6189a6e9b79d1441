#include "engine/step_api/sql_access.h"

#include <sqlite3.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "engine/io/step_error.h"
#include "engine/io/utf8.h"
#include "engine/step_api/step_context.h"

namespace flowrun {

std::filesystem::path project_path(const StepContext& ctx, const std::string& path) {
  if (path.empty()) throw StepError::permanent("the database path is empty");
  std::filesystem::path p(path);
  return p.is_absolute() ? p : ctx.services().project_root / p;
}

SqliteDb open_database(const std::filesystem::path& file, bool create) {
  std::error_code ec;
  if (!create && !std::filesystem::exists(file, ec))
    throw StepError::permanent("no database at " + file.string() + " (create: true makes one)");
  if (create && file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ec);
  SqliteDb db(file.string(), create);
  db.park_fiber_when_busy();  // a step's own connection: another item holding the lock must get to run
  return db;
}

std::string read_sql_script(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw StepError::permanent("cannot read SQL script " + file.string());
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

SqlTransaction::SqlTransaction(SqliteDb& db, bool active) : db_(db), open_(active) {
  if (open_) db_.exec("BEGIN IMMEDIATE");
}

SqlTransaction::~SqlTransaction() {
  if (!open_) return;
  try {
    db_.exec("ROLLBACK");
  } catch (const SqliteError&) {
    // The statement that failed may have rolled back already; nothing more to undo.
  }
}

void SqlTransaction::commit() {
  if (!open_) return;
  open_ = false;
  db_.exec("COMMIT");
}

namespace {

void bind_value(sqlite3* db, sqlite3_stmt* stmt, int index, const Json* value) {
  int rc;
  if (!value || value->is_null())
    rc = sqlite3_bind_null(stmt, index);
  else if (value->is_boolean())
    rc = sqlite3_bind_int(stmt, index, value->get<bool>() ? 1 : 0);
  else if (value->is_number_integer())
    rc = sqlite3_bind_int64(stmt, index, value->get<int64_t>());
  else if (value->is_number())
    rc = sqlite3_bind_double(stmt, index, value->get<double>());
  else if (value->is_string()) {
    const auto& s = value->get_ref<const std::string&>();
    rc = sqlite3_bind_text(stmt, index, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  } else {
    std::string s = dump_json(*value);
    rc = sqlite3_bind_text(stmt, index, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  if (rc != SQLITE_OK) throw SqliteError(std::string("cannot bind parameter: ") + sqlite3_errmsg(db), rc & 0xff);
}

}  // namespace

PreparedScript::PreparedScript(SqliteDb& db, const std::string& sql, const std::vector<std::string>* allowed)
    : db_(db) {
  sqlite3* raw = db.handle();
  const char* next = sql.c_str();
  try {
    while (next && *next) {
      sqlite3_stmt* stmt = nullptr;
      const char* tail = nullptr;
      if (sqlite3_prepare_v2(raw, next, -1, &stmt, &tail) != SQLITE_OK)
        throw SqliteError(
            db.path() + ": statement " + std::to_string(statements_.size() + 1) + ": " + sqlite3_errmsg(raw),
            sqlite3_errcode(raw) & 0xff);
      next = tail;
      if (!stmt) continue;  // blanks or a comment after the last ';'
      statements_.push_back({stmt, {}});
      for (int i = 1; i <= sqlite3_bind_parameter_count(stmt); ++i) {
        const char* name = sqlite3_bind_parameter_name(stmt, i);
        if (!name || name[0] == '?')
          throw SqliteError("statement " + std::to_string(statements_.size()) +
                            " has a positional parameter; name them (:custom_id, ...)");
        std::string bare(name + 1);
        if (allowed && std::find(allowed->begin(), allowed->end(), bare) == allowed->end()) {
          std::string known;
          for (const auto& a : *allowed) known += (known.empty() ? ":" : ", :") + a;
          throw SqliteError("statement " + std::to_string(statements_.size()) + " uses " + name +
                            ", which is not one of its parameters (" + known + ")");
        }
        if (std::find(names_.begin(), names_.end(), bare) == names_.end()) names_.push_back(bare);
        statements_.back().params.emplace_back(i, std::move(bare));
      }
    }
  } catch (...) {
    for (auto& c : statements_) sqlite3_finalize(c.stmt);
    throw;
  }
  if (statements_.empty()) throw SqliteError("the statement is empty");
}

PreparedScript::~PreparedScript() {
  for (auto& c : statements_) sqlite3_finalize(c.stmt);
}

int64_t PreparedScript::run(const Json& row) {
  sqlite3* raw = db_.handle();
  int64_t changed = 0;
  for (size_t n = 0; n < statements_.size(); ++n) {
    auto& c = statements_[n];
    sqlite3_reset(c.stmt);
    for (const auto& [index, name] : c.params) {
      auto it = row.is_object() ? row.find(name) : row.end();
      bind_value(raw, c.stmt, index, row.is_object() && it != row.end() ? &*it : nullptr);
    }
    int rc;
    while ((rc = sqlite3_step(c.stmt)) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) {
      std::string msg = sqlite3_errmsg(raw);
      int code = sqlite3_errcode(raw) & 0xff;
      sqlite3_reset(c.stmt);
      throw SqliteError(db_.path() + ": statement " + std::to_string(n + 1) + ": " + msg, code);
    }
    if (!sqlite3_stmt_readonly(c.stmt)) changed += sqlite3_changes64(raw);
  }
  return changed;
}

Json with_sql_errors(const std::filesystem::path& file, const std::function<Json()>& body) {
  try {
    return body();
  } catch (const SqliteError& e) {
    std::string what = e.what();
    if (what.rfind(file.string(), 0) != 0) what = file.string() + ": " + what;
    if (e.busy()) throw StepError::transient(what + " (another connection holds the database)");
    throw StepError::permanent(what);
  }
}

}  // namespace flowrun
