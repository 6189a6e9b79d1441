// flow.sql and flow.db: SQLite from Lua steps, with the same rules as the `sql` step (bound
// parameters only, paths relative to the project root, busy means transient).
//
//   local rows, changes = flow.sql("data/app.db", "SELECT id FROM t WHERE s = :s", {s = "x"})
//   local db = flow.db("data/app.db")          -- one connection for many statements
//   db:transaction(function()                  -- all or nothing: an error rolls back
//     db:exec("UPDATE t SET s = :s WHERE id = :id", {s = "done", id = 1})
//   end)
//   db:exec_many("UPDATE t SET s = :s WHERE id = :id", {{s = "a", id = 1}, {s = "b", id = 2}},
//                {names = {"s", "id"}, key = "id"})  -- prepared once, run per row -> changes
//   db:close()                                 -- also closed (and rolled back) when collected
#include <optional>
#include <vector>

#include "engine/io/utf8.h"
#include "engine/lua/lua_flow_support.h"
#include "engine/step_api/sql_access.h"
#include "engine/step_api/step_context.h"

namespace flowrun {
namespace {

constexpr const char* kDbMetatable = "flowrun.db";

// The userdata behind a flow.db handle: a connection that is null once closed.
struct LuaDb {
  SqliteDb* db;
};

SqliteDb& checked_db(lua_State* L) {
  auto* handle = static_cast<LuaDb*>(luaL_testudata(L, 1, kDbMetatable));
  if (!handle) throw StepError::permanent("call it as db:method(...), on a handle from flow.db");
  if (!handle->db) throw StepError::permanent("the database handle is closed");
  return *handle->db;
}

Json params_at(lua_State* L, FlowRuntime& rt, int index) {
  return lua_isnoneornil(L, index) ? Json::object() : rt.lua->to_json(index);
}

// Runs one statement, pushing its rows and the number of rows it changed.
int run_statement(lua_State* L, FlowRuntime& rt, SqliteDb& db, const std::string& sql, const Json& params) {
  const std::filesystem::path file = db.path();
  Json rows = with_sql_errors(file, [&] { return Json(db.query(sql, params)); });
  rt.lua->push_json(rows);
  lua_pushinteger(L, static_cast<lua_Integer>(db.statement_changes()));
  return 2;
}

// flow.sql(path, statement, params?) -> rows, changes
int flow_sql(lua_State* L, FlowRuntime& rt) {
  const auto file = project_path(*rt.ctx, arg_string(L, 1, "flow.sql: the database path"));
  const std::string sql = arg_string(L, 2, "flow.sql: the statement");
  const Json params = params_at(L, rt, 3);
  std::optional<SqliteDb> db;
  with_sql_errors(file, [&] {
    db.emplace(open_database(file, false));
    return Json();
  });
  return run_statement(L, rt, *db, sql, params);
}

// flow.db(path, {create = false}) -> handle
int flow_db(lua_State* L, FlowRuntime& rt) {
  const auto file = project_path(*rt.ctx, arg_string(L, 1, "flow.db: the database path"));
  bool create = false;
  if (lua_type(L, 2) == LUA_TTABLE) create = rt.lua->to_json(2).value("create", false);
  // The userdata first: a memory error raised while making it must not leak an open database.
  auto* handle = static_cast<LuaDb*>(lua_newuserdatauv(L, sizeof(LuaDb), 0));
  handle->db = nullptr;
  with_sql_errors(file, [&] {
    handle->db = new SqliteDb(open_database(file, create));
    return Json();
  });
  luaL_setmetatable(L, kDbMetatable);
  return 1;
}

int db_exec(lua_State* L, FlowRuntime& rt) {
  SqliteDb& db = checked_db(L);
  return run_statement(L, rt, db, arg_string(L, 2, "db:exec: the statement"), params_at(L, rt, 3));
}

// db:exec_many(statements, rows [, {names = {...}, key = "id"}]) -> changes: the statements
// (several may be `;`-separated) prepared once and run for each row, binding :name from row.name
// (NULL when absent). `names` lists the only parameters the statements may use; `key` names the
// row field that identifies a row in an error message.
int db_exec_many(lua_State* L, FlowRuntime& rt) {
  SqliteDb& db = checked_db(L);
  const std::string sql = arg_string(L, 2, "db:exec_many: the statements");
  if (lua_type(L, 3) != LUA_TTABLE) throw StepError::permanent("db:exec_many: the rows are a list of tables");
  const Json options = lua_type(L, 4) == LUA_TTABLE ? rt.lua->to_json(4) : Json::object();
  std::vector<std::string> names;
  const bool restricted = options.contains("names") && options["names"].is_array();
  if (restricted)
    for (const auto& n : options["names"]) names.push_back(n.is_string() ? n.get<std::string>() : dump_json(n));
  const std::string key = options.value("key", std::string());
  // Rows are a sequence (as to_json would see it: an array when every entry is at 1..n).
  const auto count = static_cast<lua_Integer>(lua_rawlen(L, 3));
  lua_Integer entries = 0;
  for (lua_pushnil(L); lua_next(L, 3); lua_pop(L, 1)) ++entries;
  // A map, or a list with holes (a nil among the rows): refused rather than half-run.
  if (entries > 0 && count != entries)
    throw StepError::permanent("db:exec_many: the rows are a list of tables (1.." + std::to_string(count) +
                               " without gaps), got a table of " + std::to_string(entries) + " entries");
  // Only the fields the statements bind are converted, not every row as a whole.
  auto field = [&](lua_Integer i, const std::string& name) {
    lua_rawgeti(L, 3, i);
    Json v = nullptr;
    if (lua_type(L, -1) == LUA_TTABLE) {
      lua_getfield(L, -1, name.c_str());
      v = rt.lua->to_json(-1);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return v;
  };
  int64_t changes = 0;
  with_sql_errors(db.path(), [&] {
    PreparedScript script(db, sql, restricted ? &names : nullptr);
    if (entries == 0) return Json();  // an empty table: nothing to run
    Json row = Json::object();
    for (lua_Integer i = 1; i <= count; ++i) {
      for (const auto& name : script.names()) row[name] = field(i, name);
      try {
        changes += script.run(row);
      } catch (const SqliteError& e) {
        std::string which = "row " + std::to_string(i);
        const Json id = key.empty() ? Json() : field(i, key);
        if (!id.is_null()) which += " (" + key + " " + (id.is_string() ? id.get<std::string>() : dump_json(id)) + ")";
        throw SqliteError(std::string(e.what()) + ", at " + which, e.code());
      }
    }
    return Json();
  });
  lua_pushinteger(L, static_cast<lua_Integer>(changes));
  return 1;
}

int db_simple(lua_State* L, const char* sql) {
  SqliteDb& db = checked_db(L);
  with_sql_errors(db.path(), [&] {
    db.exec(sql);
    return Json();
  });
  return 0;
}
int db_begin(lua_State* L, FlowRuntime&) { return db_simple(L, "BEGIN IMMEDIATE"); }
int db_commit(lua_State* L, FlowRuntime&) { return db_simple(L, "COMMIT"); }
int db_rollback(lua_State* L, FlowRuntime&) { return db_simple(L, "ROLLBACK"); }

// db:transaction(fn): BEGIN IMMEDIATE, fn(db), COMMIT; any error in fn rolls back and is raised
// again, so a half-written batch never becomes visible. Returns what fn returned (one value).
int db_transaction(lua_State* L, FlowRuntime& rt) {
  SqliteDb& db = checked_db(L);
  if (lua_type(L, 2) != LUA_TFUNCTION) throw StepError::permanent("db:transaction takes a function");
  std::optional<SqlTransaction> tx;
  with_sql_errors(db.path(), [&] {
    tx.emplace(db, true);
    return Json();
  });
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 1);
  rt.lua->protected_call(1, 1);  // throws LuaError; ~SqlTransaction rolls back
  with_sql_errors(db.path(), [&] {
    tx->commit();
    return Json();
  });
  return 1;
}

int db_close(lua_State* L, FlowRuntime&) {
  auto* handle = static_cast<LuaDb*>(luaL_testudata(L, 1, kDbMetatable));
  if (handle && handle->db) {
    delete handle->db;  // sqlite3_close rolls back a transaction still open
    handle->db = nullptr;
  }
  return 0;
}

}  // namespace

void add_sql_api(lua_State* L, FlowRuntime* rt) {
  set_function(L, rt, "sql", trampoline<flow_sql>);
  set_function(L, rt, "db", trampoline<flow_db>);
  if (luaL_newmetatable(L, kDbMetatable)) {
    lua_newtable(L);
    set_function(L, rt, "exec", trampoline<db_exec>);
    set_function(L, rt, "exec_many", trampoline<db_exec_many>);
    set_function(L, rt, "begin", trampoline<db_begin>);
    set_function(L, rt, "commit", trampoline<db_commit>);
    set_function(L, rt, "rollback", trampoline<db_rollback>);
    set_function(L, rt, "transaction", trampoline<db_transaction>);
    set_function(L, rt, "close", trampoline<db_close>);
    lua_setfield(L, -2, "__index");
    set_function(L, rt, "__gc", trampoline<db_close>);
    set_function(L, rt, "__close", trampoline<db_close>);
    lua_pushstring(L, kDbMetatable);
    lua_setfield(L, -2, "__metatable");  // scripts can not swap the methods out
  }
  lua_pop(L, 1);
}

}  // namespace flowrun
