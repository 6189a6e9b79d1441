#include "engine/sql_access.h"

#include <fstream>
#include <sstream>

#include "engine/step_context.h"
#include "engine/step_error.h"

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
  return SqliteDb(file.string(), create);
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
