#include <catch2/catch.hpp>

#include "engine/io/http_client.h"
#include "engine/io/sqlite_db.h"
#include "support/harness.h"
#include "support/sim_server.h"

using namespace flowrun;
using flowrun::test::Harness;
using flowrun::test::SimServer;
using flowrun::test::TempDir;

namespace {

std::vector<Json> query(const std::string& path, const std::string& sql) {
  SqliteDb db(path, false);
  return db.query(sql);
}

}  // namespace

TEST_CASE("sql: statements with bound parameters, rows into outputs", "[steps][sql]") {
  TempDir dir;
  Harness h;
  REQUIRE(h.load(R"Y(
steps:
  - id: schema
    type: sql
    with:
      database: )Y" +
                 dir.file("app.db") + R"Y(
      create: true
      statements:
        - "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)"
        - {statement: "INSERT INTO items (name) VALUES (:name)", params: {name: "it's; DROP TABLE items"}}
        - {statement: "INSERT INTO items (name) VALUES (@name)", params: {name: b}}
  - id: read
    type: sql
    with:
      database: )Y" +
                 dir.file("app.db") + R"Y(
      statement: "SELECT id, name FROM items WHERE id >= :from ORDER BY id"
      params: {from: "${{ steps.schema.outputs.last_insert_id - 1 }}"}
)Y") == "");
  RunResult r = h.run();
  REQUIRE(r.status == RunState::kSucceeded);
  CHECK(r.steps["schema"]["outputs"]["changes"] == 2);
  CHECK(r.steps["schema"]["outputs"]["last_insert_id"] == 2);
  const Json& rows = r.steps["read"]["outputs"]["rows"];
  REQUIRE(rows.size() == 2);
  CHECK(rows[0]["name"] == "it's; DROP TABLE items");  // a value, never SQL
  CHECK(rows[1] == Json{{"id", 2}, {"name", "b"}});
  CHECK(r.steps["read"]["outputs"]["row"]["id"] == 1);
  CHECK(r.steps["read"]["outputs"]["changes"] == 0);
}

TEST_CASE("sql: several statements are all or nothing", "[steps][sql]") {
  TempDir dir;
  {
    SqliteDb db(dir.file("app.db"), true);
    db.exec("CREATE TABLE t (k TEXT PRIMARY KEY)");
  }
  Harness h;
  REQUIRE(h.load(R"Y(
defaults: {retry: {attempts: 3}}
steps:
  - id: two
    type: sql
    with:
      database: )Y" +
                 dir.file("app.db") + R"Y(
      statements: ["INSERT INTO t VALUES ('a')", "INSERT INTO t VALUES ('a')"]
)Y") == "");
  RunResult r = h.run();
  REQUIRE(r.status == RunState::kFailed);
  CHECK(r.steps["two"]["error"].get<std::string>().find("UNIQUE constraint failed") != std::string::npos);
  CHECK(r.steps["two"]["error"].get<std::string>().find(dir.file("app.db")) != std::string::npos);
  REQUIRE(r.records.size() == 1);
  CHECK(r.records[0].attempts == 1);  // a constraint is permanent: not retried
  CHECK(query(dir.file("app.db"), "SELECT * FROM t").empty());
}

TEST_CASE("sql: a missing database, a misspelt parameter and two statements in one are errors", "[steps][sql]") {
  TempDir dir;
  {
    SqliteDb db(dir.file("app.db"), true);
    db.exec("CREATE TABLE t (k TEXT)");
  }
  auto error_of = [&](const std::string& with) {
    Harness h;
    REQUIRE(h.load("steps:\n  - {id: s, type: sql, with: " + with + "}\n") == "");
    RunResult r = h.run();
    REQUIRE(r.status == RunState::kFailed);
    return r.steps["s"]["error"].get<std::string>();
  };
  CHECK(error_of("{database: " + dir.file("nope.db") + ", statement: 'SELECT 1'}") ==
        "no database at " + dir.file("nope.db") + " (create: true makes one) (permanent)");
  CHECK(
      error_of("{database: " + dir.file("app.db") + ", statement: 'SELECT * FROM t WHERE k = :key', params: {kye: 1}}")
          .find("no parameter :kye in the statement") != std::string::npos);
  CHECK(error_of("{database: " + dir.file("app.db") + ", statement: 'DELETE FROM t; DROP TABLE t'}")
            .find("one statement at a time") != std::string::npos);
  CHECK(query(dir.file("app.db"), "SELECT name FROM sqlite_master WHERE name = 't'").size() == 1);
  CHECK_FALSE(std::filesystem::exists(dir.file("nope.db")));
}

TEST_CASE("sql: an expression spliced into a statement is refused when loading", "[steps][sql]") {
  auto diags = flowrun::test::diagnostics_of(R"Y(
inputs: {id: {default: "1"}}
steps:
  - {id: s, type: sql, with: {database: x.db, statement: "SELECT * FROM t WHERE id = ${{ inputs.id }}"}}
)Y");
  REQUIRE(diags.size() == 1);
  CHECK(diags[0].find("splices text into SQL") != std::string::npos);
}

TEST_CASE("lua: flow.db transactions commit together or roll back together", "[steps][sql][lua]") {
  TempDir dir;
  {
    SqliteDb db(dir.file("app.db"), true);
    db.exec("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)");
  }
  dir.write("write.lua", R"L(
return function(with, flow)
  local db = flow.db(with.db)
  db:transaction(function()
    db:exec("INSERT INTO t VALUES (:k, :v)", {k = "kept", v = 1})
  end)
  local ok, err = pcall(db.transaction, db, function()
    db:exec("INSERT INTO t VALUES (:k, :v)", {k = "dropped", v = 2})
    error("stop half-way")
  end)
  local rows, changes = flow.sql(with.db, "UPDATE t SET v = v + 1 WHERE k = :k", {k = "kept"})
  db:close()
  return {ok = ok, err = tostring(err), changes = changes, closed = pcall(db.exec, db, "SELECT 1")}
end
)L");
  Harness h;
  REQUIRE(h.load("steps:\n  - {id: w, lua: " + dir.file("write.lua") + ", with: {db: " + dir.file("app.db") + "}}\n") ==
          "");
  RunResult r = h.run();
  REQUIRE(r.status == RunState::kSucceeded);
  const Json& out = r.steps["w"]["outputs"];
  CHECK(out["ok"] == false);
  CHECK(out["err"].get<std::string>().find("stop half-way") != std::string::npos);
  CHECK(out["changes"] == 1);
  CHECK(out["closed"] == false);
  CHECK(query(dir.file("app.db"), "SELECT k, v FROM t") == std::vector<Json>{{{"k", "kept"}, {"v", 2}}});
}

TEST_CASE("lua: a script that dies inside a transaction leaves nothing behind", "[steps][sql][lua]") {
  TempDir dir;
  {
    SqliteDb db(dir.file("app.db"), true);
    db.exec("CREATE TABLE t (k TEXT)");
  }
  // No transaction() wrapper and no commit: the connection closes with the sandbox.
  dir.write("die.lua", R"L(
return function(with, flow)
  local db = flow.db(with.db)
  db:begin()
  db:exec("INSERT INTO t VALUES ('half')")
  flow.fail("killed mid-batch")
end
)L");
  Harness h;
  REQUIRE(h.load("steps:\n  - {id: d, lua: " + dir.file("die.lua") + ", with: {db: " + dir.file("app.db") + "}}\n") ==
          "");
  REQUIRE(h.run().status == RunState::kFailed);
  CHECK(query(dir.file("app.db"), "SELECT * FROM t").empty());
}

TEST_CASE("lua: flow.http_lines streams JSONL results line by line", "[steps][jsonl][lua]") {
  std::string body;
  for (int i = 0; i < 2000; ++i)
    body += "{\"custom_id\":\"r" + std::to_string(i) + "\",\"n\":" + std::to_string(i) + "}\r\n";
  body += "{\"custom_id\":\"tail\",\"n\":-1}";  // no newline at the end
  SimServer sim(Json{
      {"GET /results", Json::array({Json{{"body", body}}})},
      {"GET /broken", Json::array({Json{{"status", 503}, {"headers", {{"Retry-After", "7"}}}, {"body", "busy"}}})}});
  TempDir dir;
  dir.write("sum.lua", R"L(
return function(with, flow)
  local sum, ids = 0, 0
  local r = flow.http_lines({url = with.url, jsonl = true}, function(line)
    sum = sum + line.n
    ids = ids + 1
  end)
  local ok, err = pcall(flow.http_lines, {url = with.broken}, function() error("never called") end)
  local stopped = pcall(flow.http_lines, {url = with.url}, function(line) error("enough") end)
  return {sum = sum, ids = ids, lines = r.lines, broken = tostring(err), stopped = stopped}
end
)L");
  CurlHttpClient curl;
  Harness h;
  h.http = &curl;
  h.use_real_clock = true;
  REQUIRE(h.load("steps:\n  - {id: s, lua: " + dir.file("sum.lua") + ", with: {url: '" + sim.url("/results") +
                 "', broken: '" + sim.url("/broken") + "'}}\n") == "");
  RunResult r = h.run();
  REQUIRE(r.status == RunState::kSucceeded);
  const Json& out = r.steps["s"]["outputs"];
  CHECK(out["ids"] == 2001);
  CHECK(out["lines"] == 2001);
  CHECK(out["sum"] == 1999 * 2000 / 2 - 1);
  CHECK(out["broken"].get<std::string>().find("HTTP 503: busy") != std::string::npos);
  CHECK(out["stopped"] == false);
}

TEST_CASE("lua: db:exec_many runs a list of rows and refuses a list with holes", "[steps][sql][lua]") {
  TempDir dir;
  {
    SqliteDb db(dir.file("app.db"), true);
    db.exec("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)");
  }
  dir.write("many.lua", R"L(
return function(with, flow)
  local db = flow.db(with.db)
  local sql = "INSERT INTO t VALUES (:k, :v) ON CONFLICT (k) DO UPDATE SET v = excluded.v"
  local changed = db:exec_many(sql, {{k = "a", v = 1, unused = {deep = true}}, {k = "b"}}, {key = "k"})
  local none = db:exec_many(sql, {})
  local holes = {{k = "c", v = 3}}
  holes[3] = {k = "d", v = 4}
  local ok, err = pcall(db.exec_many, db, sql, holes)
  db:close()
  return {changed = changed, none = none, ok = ok, err = tostring(err)}
end
)L");
  Harness h;
  REQUIRE(h.load("steps:\n  - {id: m, lua: " + dir.file("many.lua") + ", with: {db: " + dir.file("app.db") + "}}\n") ==
          "");
  RunResult r = h.run();
  REQUIRE(r.status == RunState::kSucceeded);
  const Json& out = r.steps["m"]["outputs"];
  CHECK(out["changed"] == 2);
  CHECK(out["none"] == 0);
  CHECK(out["ok"] == false);
  CHECK(out["err"].get<std::string>().find("the rows are a list of tables") != std::string::npos);
  CHECK(query(dir.file("app.db"), "SELECT k, v FROM t ORDER BY k") ==
        std::vector<Json>{{{"k", "a"}, {"v", 1}}, {{"k", "b"}, {"v", nullptr}}});
}
