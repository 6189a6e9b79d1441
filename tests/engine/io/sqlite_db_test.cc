#include "engine/io/sqlite_db.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "engine/io/cancel_token.h"
#include "engine/io/clock.h"
#include "engine/io/fiber_scheduler.h"
#include "support/sim_server.h"

using namespace flowrun;
using flowrun::test::TempDir;

// query() keeps each statement prepared for the next query of the same text: these check that a
// kept statement starts clean every time (no old bindings, no half-read rows, no lock held).
TEST_CASE("sqlite: a statement run again binds its new parameters and reads from its first row", "[sql][io]") {
  TempDir dir;
  SqliteDb db(dir.file("t.db"), true);
  db.exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)");
  const std::string insert = "INSERT INTO t (k, v) VALUES (:k, :v)";
  db.query(insert, {{"k", 1}, {"v", "one"}});
  db.query(insert, {{"k", 2}, {"v", "two"}});
  const std::string select = "SELECT v FROM t WHERE k >= ? ORDER BY k";
  CHECK(db.query(select, {1}).size() == 2);
  auto rows = db.query(select, {2});
  REQUIRE(rows.size() == 1);
  CHECK(rows[0]["v"] == "two");
  // Fewer parameters than the last time: the missing one is NULL, not the old value.
  CHECK(db.query("SELECT ? IS NULL AS n, ? AS b", {1, 5})[0]["n"] == 0);
  CHECK(db.query("SELECT ? IS NULL AS n, ? AS b", {1})[0]["b"].is_null());
}

TEST_CASE("sqlite: write binds numbers and text in place, and leaves the statement clean", "[sql][io]") {
  TempDir dir;
  SqliteDb db(dir.file("t.db"), true);
  db.exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT, w TEXT)");
  const std::string big(3 << 20, 'x');  // a for_each's outputs at 10,000 items are MiBs
  const std::string insert = "INSERT INTO t (k, v, w) VALUES (?, ?, ?)";
  db.write(insert, {int64_t{1}, big, std::string_view("\0a", 2)});
  CHECK(db.statement_changes() == 1);
  db.write(insert, {int64_t{2}, "two", ""});
  auto rows = db.query("SELECT k, length(v) AS n, w FROM t ORDER BY k");
  REQUIRE(rows.size() == 2);
  CHECK(rows[0]["n"] == static_cast<int64_t>(big.size()));
  CHECK(rows[0]["w"] == std::string("\0a", 2));
  CHECK(rows[1]["w"] == "");
  // A failed write is an error naming the file, and the statement runs again afterwards.
  CHECK_THROWS_WITH(db.write(insert, {int64_t{2}, "again", ""}), Catch::Contains("t.db"));
  db.write("UPDATE t SET v = ? WHERE k = ?", {"three", int64_t{2}});
  CHECK(db.query("SELECT v FROM t WHERE k = 2")[0]["v"] == "three");
}

TEST_CASE("sqlite: a statement that failed runs again, and a kept one does not block a schema change", "[sql][io]") {
  TempDir dir;
  SqliteDb db(dir.file("t.db"), true);
  db.exec("CREATE TABLE t (k INTEGER PRIMARY KEY)");
  const std::string insert = "INSERT INTO t (k) VALUES (?)";
  db.query(insert, {1});
  CHECK_THROWS_AS(db.query(insert, {1}), SqliteError);  // the primary key
  db.query(insert, {2});
  CHECK(db.query("SELECT count(*) AS n FROM t")[0]["n"] == 2);
  // A second connection changes the schema while this one keeps its statements.
  SqliteDb other(dir.file("t.db"), false);
  other.exec("DROP TABLE t");
  other.exec("CREATE TABLE t (k INTEGER PRIMARY KEY, extra TEXT DEFAULT 'x')");
  db.query(insert, {7});
  CHECK(db.query("SELECT count(*) AS n FROM t")[0]["n"] == 1);
  CHECK_THROWS_WITH(db.query("SELECT 1; SELECT 2"), Catch::Contains("one statement at a time"));
  CHECK_THROWS_WITH(db.query("SELECT 1; SELECT 2"), Catch::Contains("one statement at a time"));
}

TEST_CASE("sqlite: many different statements keep working past the number kept", "[sql][io]") {
  TempDir dir;
  SqliteDb db(dir.file("t.db"), true);
  for (int i = 0; i < 300; ++i) CHECK(db.query("SELECT " + std::to_string(i) + " AS n")[0]["n"] == i);
  SqliteDb moved(std::move(db));
  CHECK(moved.query("SELECT 5 AS n")[0]["n"] == 5);
}

TEST_CASE("sqlite: on fibers a busy database parks its fiber so the lock holder can commit", "[sql][io][fiber]") {
  TempDir dir;
  {
    SqliteDb setup(dir.file("t.db"), true);
    setup.exec("CREATE TABLE t (k INTEGER PRIMARY KEY)");
  }
  VirtualClock clock;
  CancelToken cancel;
  std::vector<std::string> order;
  run_concurrently(
      2,
      [&](size_t i) {
        SqliteDb db(dir.file("t.db"), false);
        db.park_fiber_when_busy();
        if (i == 0) {
          db.exec("BEGIN IMMEDIATE");
          db.query("INSERT INTO t (k) VALUES (1)");
          REQUIRE(clock.sleep_for(std::chrono::milliseconds(200), cancel));  // holds the lock, parked
          db.exec("COMMIT");
          order.push_back("holder committed");
        } else {
          // Busy at first: a thread-blocking wait here would keep the holder from ever running.
          db.query("INSERT INTO t (k) VALUES (2)");
          order.push_back("waiter inserted");
        }
      },
      clock);
  CHECK(order == std::vector<std::string>{"holder committed", "waiter inserted"});
  SqliteDb check(dir.file("t.db"), false);
  CHECK(check.query("SELECT count(*) AS n FROM t")[0]["n"] == 2);
}
