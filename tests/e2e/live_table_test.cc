// End-to-end: the live table of a for_each in a real terminal (a tmux pane, 140x40), and plain
// lines when the output is a pipe. workflows/video_batch.yaml with the local provider, its jobs
// slowed (JOB_STAGE_DELAY) so that items run for a few seconds.
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdio>
#include <regex>
#include <sstream>
#include <thread>

#include "support/run_cli.h"
#include "support/sim_server.h"

using flowrun::test::CliResult;
using flowrun::test::run_flowrun;
using flowrun::test::TempDir;
using namespace std::chrono_literals;

namespace {

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// What a shell command printed on stdout.
std::string output_of(const std::string& command) {
  std::string out;
  if (FILE* p = ::popen(command.c_str(), "r")) {
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    ::pclose(p);
  }
  return out;
}

// A tmux server of its own (its own socket), killed whatever happens to the test.
class Tmux {
 public:
  Tmux() {
    static std::atomic<int> counter{0};
    socket_ = "flowrun-live-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  }
  ~Tmux() { output_of(tmux("kill-server") + " 2>/dev/null"); }
  Tmux(const Tmux&) = delete;
  Tmux& operator=(const Tmux&) = delete;
  bool start(const std::string& shell_command) {
    return std::system((tmux("new-session -d -x 140 -y 40 ") + shell_quote(shell_command)).c_str()) == 0;
  }
  std::string capture() const { return output_of(tmux("capture-pane -p")); }
  void send_keys(const std::string& keys) const { output_of(tmux("send-keys " + keys)); }

 private:
  std::string tmux(const std::string& args) const { return "tmux -L " + socket_ + " " + args; }
  std::string socket_;
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

const std::regex kHead("^videos: \\d+ running");
const std::regex kRow("^  \\S.{9} videos\\[\\d\\] ");
const std::regex kMore("^  \\+ \\d+ more running$");
const std::regex kLogLine("\\d\\d:\\d\\d:\\d\\d (DEBUG|INFO|WARN|ERROR) \\[");
const std::regex kProgressRow("videos\\[\\d\\] .*\\[#+\\.*\\] +(\\d+)%");

// The shell command that runs flowrun on `batch` in the pane and keeps the pane after it exits.
std::string pane_command(const std::string& state_dir, const std::string& stage_delay,
                         const std::vector<std::string>& args) {
  std::string command = "cd " + shell_quote(FLOWRUN_SOURCE_DIR) +
                        " && env TERM=xterm-256color FLOWRUN_STATE_DIR=" + shell_quote(state_dir) +
                        " JOB_STAGE_DELAY=" + stage_delay + " " + shell_quote(FLOWRUN_BINARY);
  for (const auto& a : args) command += " " + shell_quote(a);
  return command + "; echo FLOWRUN_EXIT=$?; sleep 120";
}

struct Batch {
  TempDir dir;
  Batch() {
    std::filesystem::create_directories(dir.file("videos"));
    for (const char* name : {"alpha.mp4", "bravo.mp4", "charlie.mp4"})
      dir.write(std::string("videos/") + name, std::string("frames of ") + name);
  }
  std::vector<std::string> args() const {
    return {std::string(FLOWRUN_SOURCE_DIR) + "/workflows/video_batch.yaml",
            "--set",
            "input_dir=" + dir.file("videos"),
            "--set",
            "output_dir=" + dir.file("out"),
            "--set",
            "poll_interval=200ms"};
  }
};

}  // namespace

TEST_CASE("the live table in a terminal: items and progress redrawn in place, the log above, the summary at the end",
          "[e2e][local][terminal]") {
  if (std::system("tmux -V >/dev/null 2>&1") != 0) {
    WARN("tmux is not installed: the terminal test did not run");
    return;
  }
  Batch batch;
  std::string command = "cd " + shell_quote(FLOWRUN_SOURCE_DIR) +
                        " && env TERM=xterm-256color FLOWRUN_STATE_DIR=" + shell_quote(batch.dir.file("state")) +
                        " JOB_STAGE_DELAY=0.8 " + shell_quote(FLOWRUN_BINARY);
  for (const auto& a : batch.args()) command += " " + shell_quote(a);
  command += "; echo FLOWRUN_EXIT=$?; sleep 120";
  Tmux tmux;
  REQUIRE(tmux.start(command));

  std::vector<std::string> captures;
  std::string final_screen;
  for (int i = 0; i < 300; ++i) {  // up to a minute
    std::this_thread::sleep_for(200ms);
    std::string screen = tmux.capture();
    if (screen.find("FLOWRUN_EXIT=") != std::string::npos) {
      final_screen = screen;
      break;
    }
    captures.push_back(std::move(screen));
  }
  INFO("final screen:\n" << final_screen);
  REQUIRE_FALSE(final_screen.empty());

  bool saw_table = false, saw_two_rows = false, saw_progress = false;
  for (const auto& screen : captures) {
    INFO("screen:\n" << screen);
    CHECK(screen.find('\x1b') == std::string::npos);
    const auto lines = lines_of(screen);
    size_t head = lines.size();
    for (size_t k = 0; k < lines.size(); ++k) {
      const std::string& line = lines[k];
      const bool table_line = std::regex_search(line, kHead) || std::regex_search(line, kRow);
      // No line is part table, part log line; no leftovers of a cursor movement.
      CHECK_FALSE((table_line && std::regex_search(line, kLogLine)));
      CHECK_FALSE(std::regex_search(line, std::regex("\\[\\d*[AJ]")));
      if (std::regex_search(line, kHead) && head == lines.size()) head = k;
    }
    if (head == lines.size()) continue;
    saw_table = true;
    // Below the head: only rows of the table (and blank lines under it), never a log line.
    size_t rows = 0;
    for (size_t k = head + 1; k < lines.size(); ++k) {
      if (lines[k].empty()) continue;
      const bool row = std::regex_search(lines[k], kRow) || std::regex_search(lines[k], kMore);
      CHECK(row);
      if (!row) INFO("not a row: " << lines[k]);
      rows += row ? 1 : 0;
      std::smatch m;
      if (std::regex_search(lines[k], m, kProgressRow)) {
        const int percent = std::stoi(m[1]);
        if (percent > 0 && percent < 100) saw_progress = true;
      }
    }
    if (rows >= 2) saw_two_rows = true;
  }
  CHECK(saw_table);
  CHECK(saw_two_rows);  // two items at a time (concurrency 2)
  CHECK(saw_progress);  // a bar moving between 0 and 100%

  // The end: the table gone, each item's end above, the summary as without the table.
  CHECK(final_screen.find("FLOWRUN_EXIT=0") != std::string::npos);
  CHECK(std::regex_search(final_screen, std::regex("run \\S+ succeeded in")));
  CHECK(final_screen.find('\x1b') == std::string::npos);
  for (const auto& line : lines_of(final_screen)) {
    CHECK_FALSE(std::regex_search(line, kHead));
    CHECK_FALSE(std::regex_search(line, kRow));
  }
  for (const char* item : {"videos[0]  ", "videos[1]  ", "videos[2]  "})
    CHECK(std::regex_search(
        final_screen,
        std::regex("(^|\\n)" + std::regex_replace(item, std::regex("[\\[\\]]"), "\\$&") + ".* after \\d+:\\d\\d")));
}

TEST_CASE("the live table in a terminal: Ctrl+C prints its notice above the table, which goes before the summary",
          "[e2e][local][terminal]") {
  if (std::system("tmux -V >/dev/null 2>&1") != 0) {
    WARN("tmux is not installed: the terminal test did not run");
    return;
  }
  Batch batch;
  Tmux tmux;
  auto args = batch.args();
  args.insert(args.end(), {"--on-interrupt", "cleanup"});  // the local instances are destroyed, not left
  REQUIRE(tmux.start(pane_command(batch.dir.file("state"), "2", args)));
  bool saw_rows = false;
  for (int i = 0; i < 150 && !saw_rows; ++i) {
    std::this_thread::sleep_for(100ms);
    saw_rows = std::regex_search(tmux.capture(), std::regex("\\n  running +videos\\[1\\]"));
  }
  REQUIRE(saw_rows);
  tmux.send_keys("C-c");
  std::string final_screen;
  for (int i = 0; i < 300 && final_screen.empty(); ++i) {
    std::this_thread::sleep_for(200ms);
    std::string screen = tmux.capture();
    if (screen.find("FLOWRUN_EXIT=") != std::string::npos) final_screen = screen;
  }
  INFO("final screen:\n" << final_screen);
  REQUIRE_FALSE(final_screen.empty());
  CHECK(std::regex_search(final_screen, std::regex("\\nSIGINT: stopping \\(again to exit at once\\)\\n")));
  CHECK(std::regex_search(final_screen, std::regex("run \\S+ cancelled")));
  CHECK(final_screen.find('\x1b') == std::string::npos);
  for (const auto& line : lines_of(final_screen)) {
    CHECK_FALSE(std::regex_search(line, kHead));
    CHECK_FALSE(std::regex_search(line, kRow));
  }
  CHECK(std::filesystem::is_empty(batch.dir.file("state/local-instances")));
}

TEST_CASE("the live table stays off when the output is a pipe: plain log lines, no escape sequences",
          "[e2e][local][terminal]") {
  Batch batch;
  CliResult r = run_flowrun(
      batch.args(),
      {{"FLOWRUN_STATE_DIR", batch.dir.file("state")}, {"JOB_STAGE_DELAY", "0.05"}, {"TERM", "xterm-256color"}});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find('\x1b') == std::string::npos);
  CHECK(r.err.find('\x1b') == std::string::npos);
  // The log as always: progress bars as log lines, no table.
  CHECK(std::regex_search(r.err, std::regex("INFO \\[videos\\[\\d\\]\\.result\\] progress \\[#+")));
  CHECK_FALSE(std::regex_search(r.out + r.err, std::regex("videos: \\d+ running")));
  CHECK(std::regex_search(r.out, std::regex("run \\S+ succeeded in")));
}
