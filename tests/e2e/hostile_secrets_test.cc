// End-to-end: secrets in every form they take on the way out, HTTP that redirects, compresses or
// points at files, journals that cannot be written, and YAML that expands without bound, through
// the real binary. Nothing leaks, nothing balloons, and `finally` still runs.
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "engine/io/json.h"
#include "engine/io/redactor.h"
#include "engine/io/sqlite_db.h"
#include "support/run_cli.h"
#include "support/sim_server.h"

using flowrun::Json;
using flowrun::Redactor;
using flowrun::test::CliResult;
using flowrun::test::FlowrunProcess;
using flowrun::test::run_flowrun;
using flowrun::test::SimServer;
using flowrun::test::TempDir;

namespace {

const std::string kSecret = "Sup3rS3cret/Val+ue==";
// Every form of kSecret (raw, %2F or %2f, JSON-escaped) holds this; none of the redacted text does.
const std::string kSecretCore = "Sup3rS3cret";
const std::string kPem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEAq7BFUpkGp3+XQ\n"
    "Zk2PqgR7OQxhd1kxRLm8cE0W6eTqU5Vd2lH9fMkQwHnH1fFNYp0aQIDAQAB\n"
    "-----END PRIVATE KEY-----";
const std::vector<std::string> kPemLines = {"MIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEAq7BFUpkGp3+XQ",
                                            "Zk2PqgR7OQxhd1kxRLm8cE0W6eTqU5Vd2lH9fMkQwHnH1fFNYp0aQIDAQAB"};

const char* const kFinally = "finally:\n  - {id: cleanup, type: log, with: {message: \"finally ran\"}}\n";

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The places a secret could end up: what was printed, the log file, the journal and its WAL.
std::string everything_written(const TempDir& dir, const CliResult& r) {
  std::string all = r.out + r.err;
  for (const char* name : {"flowrun.log", "state/journal.db", "state/journal.db-wal"})
    all += read_bytes(dir.file(name));
  return all;
}

void check_no_secret(const std::string& text) {
  CHECK(text.find(kSecretCore) == std::string::npos);
  CHECK(text.find("Sup3rS3cret%2f") == std::string::npos);
  for (const auto& line : kPemLines) CHECK(text.find(line) == std::string::npos);
}

bool finally_ran(const CliResult& r) { return (r.out + r.err).find("finally ran") != std::string::npos; }

std::string first_run_id(const std::string& state_dir) {
  auto runs = run_flowrun({"runs", "--json"}, {{"FLOWRUN_STATE_DIR", state_dir}});
  REQUIRE(runs.exit_code == 0);
  Json list = Json::parse(runs.out);
  REQUIRE(!list.empty());
  return list[0]["id"].get<std::string>();
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

}  // namespace

TEST_CASE("hostile: the redactor hides keys, percent-encoded, JSON-escaped and per-line forms", "[hostile]") {
  Redactor r;
  REQUIRE(r.add_secret(kSecret));
  CHECK(r.redact("?key=Sup3rS3cret%2FVal%2Bue%3D%3D&x=1") == "?key=***&x=1");
  CHECK(r.redact("?key=Sup3rS3cret%2fVal%2bue%3d%3d") == "?key=***");
  Json j = Json::parse(R"({"Sup3rS3cret/Val+ue==": {"a": "x Sup3rS3cret/Val+ue== y"}, "***": 1})");
  Json out = r.redact_json(j);
  CHECK(out.dump().find(kSecretCore) == std::string::npos);
  CHECK(out["***"] == 1);  // the existing key is kept
  CHECK(out["***#2"]["a"] == "x *** y");

  Redactor quoted;
  REQUIRE(quoted.add_secret("ab\"cd\\ef12 z"));
  CHECK(quoted.redact(R"({"h":"ab\"cd\\ef12 z"})") == R"({"h":"***"})");
  CHECK(quoted.redact("q=ab%22cd%5Cef12+z") == "q=***");
  CHECK(quoted.redact("q=ab%22cd%5Cef12%20z") == "q=***");

  Redactor pem;
  REQUIRE(pem.add_secret(kPem));
  CHECK(pem.redact(kPemLines[1] + "\n") == "***\n");
  CHECK(pem.redact("-----END PRIVATE KEY-----") == "***");

  Redactor shorty;
  CHECK_FALSE(shorty.add_secret("ab"));
  CHECK_FALSE(shorty.add_secret("abc"));
  CHECK(shorty.add_secret(""));  // nothing to hide
  CHECK(shorty.add_secret("abcd"));
  CHECK(shorty.redact("1 ab abc abcd") == "1 ab abc ***");
}

TEST_CASE("hostile: a secret reaches no output, log file or journal in any of its forms", "[hostile][e2e]") {
  TempDir dir;
  SimServer sim(Json{{"/reflect", Json::array({{{"status", 200},
                                                {"headers", {{"X-Echo", kSecret}, {"X-" + kSecret, "as a name"}}},
                                                {"json", {{kSecret, {{"v", kSecret}}}}}}})},
                     {"/fail", Json::array({{{"status", 400}, {"json", {{"error", "bad key"}}}}})}});
  dir.write("keys.lua", "return function(with, flow) return {[with.k] = 1, nested = {[with.k .. 'x'] = with.k}} end\n");
  dir.write("wf.yaml",
            "name: leak\n"
            "secrets: [API_KEY, PEM_KEY]\n"
            "steps:\n"
            "  - id: keyed\n"
            "    type: exec\n"
            "    env: {K: \"${{ secrets.API_KEY }}\"}\n"
            "    with: {argv: [sh, -c, 'printf \"{\\\"%s\\\": 1}\" \"$K\"'], parse_json: true}\n"
            "  - id: pem\n"
            "    type: exec\n"
            "    env: {PEM: \"${{ secrets.PEM_KEY }}\"}\n"
            "    with: {argv: [sh, -c, 'printf \"%s\\n\" \"$PEM\"; printf \"%s\\n\" \"$PEM\" >&2']}\n"
            "  - {id: lua, lua: " +
                dir.file("keys.lua") +
                ", with: {k: \"${{ secrets.API_KEY }}\"}}\n"
                "  - {id: say, type: log, with: {message: \"key ${{ secrets.API_KEY }} pem ${{ secrets.PEM_KEY }}\"}}\n"
                "  - id: reflect\n"
                "    type: http\n"
                "    with: {url: \"" +
                sim.url("/reflect") +
                "\", headers: {x-api-key: \"${{ secrets.API_KEY }}\"}}\n"
                "  - id: query\n"
                "    type: http\n"
                "    with: {url: \"" +
                sim.url("/fail") + "\", query: {key: \"${{ secrets.API_KEY }}\"}}\n" + kFinally);
  const std::map<std::string, std::string> env{
      {"FLOWRUN_STATE_DIR", dir.file("state")}, {"API_KEY", kSecret}, {"PEM_KEY", kPem}};
  auto r = run_flowrun({dir.file("wf.yaml"), "-v", "--log-file", dir.file("flowrun.log")}, env);
  INFO("exit " << r.exit_code << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err);
  CHECK(r.exit_code == 1);  // the query step's 400
  CHECK(finally_ran(r));
  // The secret did go out: the request carried it, percent-encoded.
  bool sent = false;
  for (const auto& req : sim.requests()) sent |= req.value("query", "") == "key=Sup3rS3cret%2FVal%2Bue%3D%3D";
  CHECK(sent);
  CHECK(r.out.find("key=***") != std::string::npos);
  check_no_secret(everything_written(dir, r));

  const std::string id = first_run_id(dir.file("state"));
  for (const auto& args : {std::vector<std::string>{"show", id}, {"show", id, "--json"}, {"runs", "--json"}}) {
    auto shown = run_flowrun(args, env);
    INFO(args[0] << "\n" << shown.out << shown.err);
    CHECK(shown.exit_code == 0);
    check_no_secret(shown.out + shown.err);
  }
}

TEST_CASE("hostile: --dry-run shows a secret with quotes and backslashes redacted", "[hostile][e2e]") {
  TempDir dir;
  dir.write("wf.yaml",
            "name: dry\nsecrets: [Q]\nsteps:\n"
            "  - {id: call, type: http, with: {url: \"http://127.0.0.1:9/x\", headers: {h: \"${{ secrets.Q }}\"},"
            " json: {k: \"${{ secrets.Q }}\"}}}\n");
  auto r = run_flowrun({dir.file("wf.yaml"), "--dry-run"},
                       {{"FLOWRUN_STATE_DIR", dir.file("state")}, {"Q", "qX\"7z\\Kw9pL"}});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("***") != std::string::npos);
  CHECK((r.out + r.err).find("Kw9pL") == std::string::npos);
}

TEST_CASE("hostile: a secret shorter than 4 characters is refused before the run starts", "[hostile][e2e]") {
  TempDir dir;
  dir.write("wf.yaml", "name: short\nsecrets: [PIN]\nsteps:\n  - {id: a, type: log, with: {message: hi}}\n");
  auto r = run_flowrun({dir.file("wf.yaml")}, {{"FLOWRUN_STATE_DIR", dir.file("state")}, {"PIN", "42"}});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 2);
  CHECK(r.err ==
        "flowrun: secret PIN is shorter than 4 characters, too short to redact from logs and the journal; give it a "
        "longer value\n");
  CHECK(r.out.find("hi") == std::string::npos);
}

TEST_CASE("hostile: a redirect to another origin carries none of the request's headers", "[hostile][e2e]") {
  TempDir dir;
  SimServer other(Json{{"/landing", Json::array({{{"status", 200}, {"json", {{"ok", true}}}}})}});
  SimServer first(Json{{"/away", Json::array({{{"status", 302}, {"headers", {{"Location", other.url("/landing")}}}}})},
                       {"/here", Json::array({{{"status", 307}, {"headers", {{"Location", "/landing"}}}}})},
                       {"/landing", Json::array({{{"status", 200}, {"json", {{"ok", true}}}}})}});
  dir.write("wf.yaml",
            "name: redirect\nsecrets: [API_KEY]\nsteps:\n"
            "  - {id: away, type: http, with: {url: \"" +
                first.url("/away") +
                "\", headers: "
                "{x-api-key: \"${{ secrets.API_KEY }}\", Authorization: \"Bearer ${{ secrets.API_KEY }}\", X-Other: "
                "plain}}}\n"
                "  - {id: here, type: http, with: {url: \"" +
                first.url("/here") +
                "\", headers: "
                "{x-api-key: \"${{ secrets.API_KEY }}\"}}}\n");
  auto r = run_flowrun({dir.file("wf.yaml")}, {{"FLOWRUN_STATE_DIR", dir.file("state")}, {"API_KEY", kSecret}});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto lower_keys = [](const Json& headers) {
    std::string keys;
    for (const auto& [k, v] : headers.items()) {
      std::string low = k;
      std::transform(low.begin(), low.end(), low.begin(), ::tolower);
      keys += low + ",";
    }
    return keys;
  };
  auto at_other = other.requests();
  REQUIRE(at_other.size() == 1);
  INFO(at_other[0].dump());
  CHECK(at_other[0].dump().find(kSecretCore) == std::string::npos);
  CHECK(lower_keys(at_other[0]["headers"]).find("x-other") == std::string::npos);
  // The same origin keeps them.
  auto at_first = first.requests();
  REQUIRE(at_first.size() == 3);
  CHECK(at_first[2]["path"] == "/landing");
  CHECK(lower_keys(at_first[2]["headers"]).find("x-api-key,") != std::string::npos);
}

TEST_CASE("hostile: file:// URLs are refused, directly or by a redirect", "[hostile][e2e]") {
  TempDir dir;
  dir.write("hostname", "host-file-content-xyz\n");
  SimServer sim(Json{
      {"/to-file", Json::array({{{"status", 302}, {"headers", {{"Location", "file://" + dir.file("hostname")}}}}})}});
  for (const std::string& url : {"file://" + dir.file("hostname"), sim.url("/to-file")}) {
    dir.write("wf.yaml", "name: file\nsteps:\n  - {id: get, type: http, retry: {attempts: 3}, with: {url: \"" + url +
                             "\"}}\n" + kFinally);
    auto r = run_flowrun({dir.file("wf.yaml")}, {{"FLOWRUN_STATE_DIR", dir.file("state")}});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.out.find("only http and https URLs are fetched") != std::string::npos);
    CHECK((r.out + r.err).find("host-file-content-xyz") == std::string::npos);
    CHECK(r.err.find("attempt 2/3") == std::string::npos);  // permanent
    CHECK(finally_ran(r));
  }
}

TEST_CASE("hostile: a gzip bomb stops at max_body without ballooning", "[hostile][e2e]") {
  TempDir dir;
  SimServer sim(Json{{"/bomb", Json::array({{{"status", 200}, {"gzip_zeros", 300 << 20}}})}});
  SECTION("the default, 64 MiB") {
    dir.write("wf.yaml", "name: bomb\nsteps:\n  - {id: get, type: http, timeout: 120s, with: {url: \"" +
                             sim.url("/bomb") + "\"}}\n" + kFinally);
    FlowrunProcess p({dir.file("wf.yaml")}, {{"FLOWRUN_STATE_DIR", dir.file("state")}});
    long peak_kb = 0;
    const std::string status = "/proc/" + std::to_string(p.pid()) + "/status";
    for (int i = 0; i < 6000; ++i) {
      std::ifstream in(status);
      std::string line;
      bool alive = false;
      while (std::getline(in, line)) {
        if (line.rfind("State:", 0) == 0 && line.find("zombie") != std::string::npos) break;
        if (line.rfind("VmHWM:", 0) == 0) {
          peak_kb = std::max(peak_kb, std::stol(line.substr(6)));
          alive = true;
        }
      }
      if (!alive) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    auto r = p.wait();
    INFO(r.out << r.err << "\npeak " << peak_kb << " KiB");
    CHECK(r.exit_code == 1);
    CHECK(r.out.find("the response body is larger than max_body (64 MiB, counted after decompression)") !=
          std::string::npos);
    CHECK(finally_ran(r));
    CHECK(peak_kb > 0);
    CHECK(peak_kb < 400 * 1024);  // was 6.5 GB
  }
  SECTION("a step's own max_body") {
    dir.write("wf.yaml", "name: bomb\nsteps:\n  - {id: get, type: http, with: {url: \"" + sim.url("/bomb") +
                             "\", max_body: 1MiB}}\n" + kFinally);
    auto r = run_flowrun({dir.file("wf.yaml")}, {{"FLOWRUN_STATE_DIR", dir.file("state")}});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.out.find("larger than max_body (1 MiB") != std::string::npos);
  }
  SECTION("a bad max_body is a validate error") {
    dir.write("wf.yaml", "name: bomb\nsteps:\n  - {id: get, type: http, with: {url: \"" + sim.url("/bomb") +
                             "\", max_body: lots}}\n");
    auto r = run_flowrun({"validate", dir.file("wf.yaml")});
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("max_body") != std::string::npos);
  }
}

TEST_CASE("hostile: the state directory is 0700 and the journal and log files 0600", "[hostile][e2e]") {
  TempDir dir;
  dir.write("wf.yaml", "name: perms\nsteps:\n  - {id: a, type: log, with: {message: hi}}\n");
  auto r =
      run_flowrun({dir.file("wf.yaml"), "--log-file", dir.file("run.log")}, {{"FLOWRUN_STATE_DIR", dir.file("state")}});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(mode_of(dir.file("state")) == 0700);
  CHECK(mode_of(dir.file("state/journal.db")) == 0600);
  for (const char* extra : {"state/journal.db-wal", "state/journal.db-shm"})
    if (std::filesystem::exists(dir.file(extra))) CHECK(mode_of(dir.file(extra)) == 0600);
  CHECK(mode_of(dir.file("run.log")) == 0600);
}

TEST_CASE("hostile: a journal that cannot be written ends with a resume hint, finally ran", "[hostile][e2e]") {
  TempDir dir;
  // RLIMIT_FSIZE stands in for a full disk (SQLite fails the write with "disk I/O error"); the
  // child inherits the limit and SIGXFSZ ignored.
  dir.write("wf.yaml",
            "name: full\nsteps:\n"
            "  - {id: small, type: exec, with: {argv: [echo, hi]}}\n"
            "  - {id: big, type: exec, with: {argv: [sh, -c, \"head -c 3000000 /dev/zero | tr '\\\\\\\\0' x\"]}}\n"
            "  - {id: after, type: exec, with: {argv: [echo, after]}}\n" +
                std::string(kFinally));
  const std::map<std::string, std::string> env{{"FLOWRUN_STATE_DIR", dir.file("state")}};
  REQUIRE(run_flowrun({"runs"}, env).exit_code == 0);  // creates the journal before the limit
  CliResult r;
  {
    struct rlimit old {};
    REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0);
    auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = old;
    small.rlim_cur = 1 << 20;
    REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
    r = run_flowrun({dir.file("wf.yaml")}, env);
    setrlimit(RLIMIT_FSIZE, &old);
    ::signal(SIGXFSZ, old_handler);
  }
  INFO("exit " << r.exit_code << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err);
  CHECK(r.exit_code == 1);
  CHECK(finally_ran(r));
  std::smatch m;
  const std::regex hint("cannot write the journal " + dir.file("state/journal.db") +
                        ": [^\n]*Free space on [^\n]* and run `flowrun resume ([0-9a-z-]+)`");
  REQUIRE(std::regex_search(r.err, m, hint));
  const std::string id = m[1];
  // Once the journal can be written again, the run carries on from the last step recorded.
  auto resumed = run_flowrun({"resume", id}, env);
  INFO("resume:\n" << resumed.out << resumed.err);
  CHECK(resumed.exit_code == 0);
  CHECK(resumed.err.find("finally ran") != std::string::npos);
}

TEST_CASE("hostile: a journal whose schema_version is not a number is a clear error", "[hostile][e2e]") {
  TempDir dir;
  const std::map<std::string, std::string> env{{"FLOWRUN_STATE_DIR", dir.file("state")}};
  REQUIRE(run_flowrun({"runs"}, env).exit_code == 0);
  {
    flowrun::SqliteDb db(dir.file("state/journal.db"), false);
    db.exec("UPDATE meta SET value = 'abc' WHERE key = 'schema_version'");
  }
  auto r = run_flowrun({"runs"}, env);
  INFO(r.err);
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("the journal " + dir.file("state/journal.db") +
                   " has a schema_version that is not a version number ('abc')") != std::string::npos);
  CHECK(r.err.find("stoi") == std::string::npos);
}

TEST_CASE("hostile: YAML aliases expanding past a million nodes are a validate error at once", "[hostile][e2e]") {
  TempDir dir;
  std::string yaml = "name: laughs\nsteps:\n  - id: a\n    type: log\n    with:\n      message: hi\n      x:\n";
  yaml += "        l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int i = 1; i <= 8; ++i) {
    std::string prev = "*l" + std::to_string(i - 1);
    yaml += "        l" + std::to_string(i) + ": &l" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) yaml += (k ? ", " : "") + prev;
    yaml += "]\n";
  }
  dir.write("laughs.yaml", yaml);
  const auto started = std::chrono::steady_clock::now();
  auto r = run_flowrun({"validate", dir.file("laughs.yaml")});
  const auto took = std::chrono::steady_clock::now() - started;
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(dir.file("laughs.yaml") + ":13:9: error: this value expands to more than 1000000 YAML nodes") !=
        std::string::npos);
  CHECK(took < std::chrono::seconds(20));
}
