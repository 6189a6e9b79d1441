// `sql`: run statements on a SQLite database. Values are bound as named parameters (:name, @name,
// $name), never spliced into the text, so a value from an API can not change the statement.
// Several statements run in one transaction by default: all of them take effect, or none.
#include <filesystem>

#include "engine/io/sqlite_db.h"
#include "engine/io/step_error.h"
#include "engine/step_api/sql_access.h"
#include "engine/step_api/step_context.h"
#include "steps/basic/basic_steps.h"

namespace flowrun {
namespace {

// One statement and its parameters, as written in `statement`/`params` or in `statements`.
struct SqlStatement {
  std::string text;
  Json params;
};

std::vector<SqlStatement> statements_of(const StepContext& ctx) {
  const Json& with = ctx.with();
  std::vector<SqlStatement> out;
  if (with.contains("statement")) out.push_back({ctx.string_param("statement"), with.value("params", Json::object())});
  if (with.contains("statements")) {
    if (!with["statements"].is_array()) throw StepError::permanent("statements must be a list");
    for (const auto& s : with["statements"]) {
      if (s.is_string())
        out.push_back({s.get<std::string>(), Json::object()});
      else if (s.is_object() && s.contains("statement") && s["statement"].is_string())
        out.push_back({s["statement"].get<std::string>(), s.value("params", Json::object())});
      else
        throw StepError::permanent("each entry of statements is a string or {statement, params}, not " + s.dump());
    }
  }
  return out;
}

class SqlStep final : public StepType {
 public:
  const StepInfo& info() const override {
    static const StepInfo info{
        .name = "sql",
        .summary = "Run statements on a SQLite database with bound parameters; rows into outputs",
        .params = {{"database", ParamType::kString, true, "database file (relative to the project root)"},
                   {"statement", ParamType::kString, false, "one statement; :name placeholders take `params`"},
                   {"params", ParamType::kAny, false,
                    "values for the statement's placeholders (a map, or a list for ?)"},
                   {"statements", ParamType::kList, false, "several statements: strings or {statement, params}"},
                   {"script", ParamType::kString, false,
                    "a .sql file run as is before the statements (a schema), no parameters"},
                   {"transaction", ParamType::kBool, false, "run them all in one transaction (default true)"},
                   {"create", ParamType::kBool, false, "create the database file when missing (default false)"}},
        .side_effects = true};
    return info;
  }

  void validate(const Json& with, std::vector<std::pair<std::string, std::string>>& problems) const override {
    if (!with.contains("statement") && !with.contains("statements") && !with.contains("script"))
      problems.emplace_back("database", "a sql step needs `statement`, `statements` or `script`");
    const std::string text =
        with.contains("statement") && with["statement"].is_string() ? with["statement"].get<std::string>() : "";
    const bool whole_expression = text.rfind("${{", 0) == 0 && text.find("}}") == text.size() - 2;
    if (text.find("${{") != std::string::npos && !whole_expression)
      problems.emplace_back("statement",
                            "an expression inside a statement splices text into SQL; "
                            "write :name placeholders and pass the values in `params`");
  }

  Json run(StepContext& ctx) const override {
    const std::filesystem::path file = project_path(ctx, ctx.string_param("database"));
    const bool create = ctx.bool_param("create", false);
    const bool transaction = ctx.bool_param("transaction", true);
    const std::vector<SqlStatement> statements = statements_of(ctx);
    std::string script;
    if (ctx.with().contains("script")) script = read_sql_script(project_path(ctx, ctx.string_param("script")));

    return with_sql_errors(file, [&] {
      SqliteDb db = open_database(file, create);
      SqlTransaction tx(db, transaction && statements.size() + (script.empty() ? 0 : 1) > 1);
      if (!script.empty()) db.exec(script);
      Json results = Json::array();
      int64_t changes = 0;
      for (const auto& s : statements) {
        Json rows = Json(db.query(s.text, s.params));
        const int64_t n = db.statement_changes();
        changes += n;
        results.push_back({{"rows", rows}, {"changes", n}});
      }
      tx.commit();
      Json out = {{"changes", changes}, {"last_insert_id", db.last_insert_rowid()}};
      out["rows"] = results.empty() ? Json::array() : results.back()["rows"];
      out["row"] = out["rows"].empty() ? Json() : out["rows"][0];
      if (results.size() > 1) out["results"] = results;
      ctx.log().info(file.filename().string() + ": " + std::to_string(statements.size()) + " statement(s), " +
                     std::to_string(out["rows"].size()) + " row(s), " + std::to_string(changes) + " change(s)");
      return out;
    });
  }
};

}  // namespace

std::unique_ptr<StepType> make_sql_step() { return std::make_unique<SqlStep>(); }

}  // namespace flowrun
