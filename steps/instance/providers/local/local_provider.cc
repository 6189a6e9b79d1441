// The `local` provider: an instance is a local process group running the start command with
// `sh -c` in a directory of its own, its output being the instance log. Like a rented machine
// it outlives flowrun: it is started in a session of its own (Ctrl+C in the terminal does not
// reach it), and everything about it lives in files under STATE_DIR/local-instances/ID/, so a
// resumed run finds it again:
//   meta.json   id, label, start time
//   pid         "SUPERVISOR_PID PROCESS_GROUP START_TICKS" (the ticks tell a reused pid apart)
//   log         stdout and stderr of the start command
//   exit_code   written by the supervisor when the start command ends
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "engine/io/fiber_scheduler.h"
#include "engine/io/process_group.h"
#include "engine/io/step_error.h"
#include "engine/step_api/step_context.h"
#include "steps/instance/logs/log_follower.h"
#include "steps/instance/providers/registry.h"

extern char** environ;

namespace flowrun {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file_atomically(const fs::path& p, const std::string& text) {
  fs::path tmp = p;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw StepError::permanent("cannot write " + tmp.string());
  }
  fs::rename(tmp, p);
}

struct ProcessRecord {
  pid_t supervisor = 0;
  pid_t group = 0;
  std::string ticks;
};

std::optional<ProcessRecord> read_process_record(const fs::path& dir) {
  std::istringstream in(read_file(dir / "pid"));
  ProcessRecord r;
  if (!(in >> r.supervisor >> r.group >> r.ticks)) return std::nullopt;
  return r;
}

bool alive(const ProcessRecord& r) {
  // flowrun is a subreaper (see process_runner.cc), so an ended supervisor may be its zombie.
  if (!r.ticks.empty() && is_zombie_of(r.supervisor, r.ticks)) ::waitpid(r.supervisor, nullptr, WNOHANG);
  return ::kill(r.supervisor, 0) == 0 && !r.ticks.empty() && process_start_ticks(r.supervisor) == r.ticks;
}

void close_inherited_fds() {
#ifdef SYS_close_range
  if (::syscall(SYS_close_range, 3u, ~0u, 0u) == 0) return;
#endif
  for (int fd = 3; fd < 4096; ++fd) ::close(fd);
}

// Writes `n` in decimal with write(2) only: this runs between fork and exit.
void write_number(int fd, int n) {
  char buf[16];
  int i = sizeof buf;
  bool negative = n < 0;
  unsigned v = negative ? 0u - static_cast<unsigned>(n) : static_cast<unsigned>(n);
  do buf[--i] = static_cast<char>('0' + v % 10), v /= 10;
  while (v && i > 1);
  if (negative) buf[--i] = '-';
  (void)!::write(fd, buf + i, sizeof buf - i);
}

class LocalProvider final : public InstanceProvider {
 public:
  // `price_per_hour`: what the one offer pretends to cost (the local machine is free), so cost
  // views and their tests have something to count.
  LocalProvider(fs::path root, fs::path project_root, double price_per_hour)
      : root_(std::move(root)), project_root_(std::move(project_root)), price_per_hour_(price_per_hour) {}

  std::string name() const override { return "local"; }

  std::vector<Offer> search_offers(const OfferFilter& filter, StepContext& ctx) override {
    if (!filter.gpu_name.empty())
      ctx.log().debug("the local provider has one machine; gpu_name '" + filter.gpu_name + "' is not checked");
    return {
        Offer{.id = "local", .gpu_name = "local", .num_gpus = 1, .price_per_hour = price_per_hour_, .reliability = 1}};
  }

  CreateResult create(const Offer& offer, const InstanceSpec& spec, StepContext& ctx) override {
    fs::create_directories(root_);
    auto [id, dir] = new_instance_dir();
    Json meta = {
        {"id", id},
        {"label", spec.label},
        {"image", spec.image},
        {"price_per_hour", offer.price_per_hour},
        {"created", std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count()}};
    write_file_atomically(dir / "meta.json", meta.dump(2));
    start_supervised(dir, spec);
    ctx.log().debug("local instance " + id + " started in " + dir.string());
    return InstanceCreated{id};
  }

  std::optional<InstanceState> get(const std::string& id, StepContext&) override { return state_of(id); }

  std::vector<InstanceState> find_by_label(const std::string& label, StepContext&) override {
    std::vector<InstanceState> found;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(root_, ec)) {
      auto state = state_of(entry.path().filename().string());
      if (state && state->label == label) found.push_back(*state);
    }
    return found;
  }

  std::string logs(const std::string& id, int tail_lines, StepContext&) override {
    fs::path dir = dir_of(id);
    if (!fs::exists(dir)) throw StepError::permanent("local instance " + id + " does not exist");
    return read_file_tail(dir / "log", tail_lines);
  }

  bool destroy(const std::string& id, StepContext& ctx) override {
    fs::path dir = dir_of(id);
    if (!fs::exists(dir)) return false;
    if (auto rec = read_process_record(dir); rec && alive(*rec)) {
      ::kill(-rec->group, SIGTERM);
      // Real time for the job to exit, on a pool thread: the other items' fibers go on meanwhile.
      run_blocking([&] {
        for (int i = 0; i < 60 && alive(*rec); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      });
      if (alive(*rec)) {
        ctx.log().warn("local instance " + id + " ignored SIGTERM; killing it");
        ::kill(-rec->group, SIGKILL);
      }
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
    if (ec) throw StepError::transient("cannot remove " + dir.string() + ": " + ec.message());
    return true;
  }

 private:
  fs::path dir_of(const std::string& id) const {
    if (id.empty() || id.find_first_not_of("0123456789-") != std::string::npos)
      throw StepError::permanent("'" + id + "' is not a local instance id");
    return root_ / id;
  }

  // Ids are never reused, so a step holding a destroyed instance's id cannot see a new one.
  std::pair<std::string, fs::path> new_instance_dir() {
    static std::atomic<unsigned> counter{0};
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                  .count();
    for (;;) {
      std::string id =
          std::to_string(ms) + "-" + std::to_string(::getpid() % 100000) + std::to_string(counter++ % 1000);
      fs::path dir = root_ / id;
      if (fs::create_directory(dir)) return {id, dir};
    }
  }

  std::optional<InstanceState> state_of(const std::string& id) {
    fs::path dir = dir_of(id);
    if (!fs::exists(dir / "meta.json")) return std::nullopt;
    Json meta = Json::parse(read_file(dir / "meta.json"), nullptr, false);
    InstanceState s{
        .id = id, .status = "loading", .message = "", .label = "", .gpu_name = "local", .price_per_hour = 0};
    if (meta.is_object()) {
      s.label = meta.value("label", "");
      const Json price = meta.value("price_per_hour", Json(0));
      if (price.is_number()) s.price_per_hour = price.get<double>();
    }
    std::string code = read_file(dir / "exit_code");
    if (!code.empty()) {
      s.status = "exited";
      s.message = "the start command exited with code " + code;
    } else if (auto rec = read_process_record(dir)) {
      s.status = alive(*rec) ? "running" : "exited";
      if (s.status == "exited") s.message = "the instance process is gone (killed, or the machine restarted)";
    }
    return s;
  }

  // Starts `sh -c START_COMMAND` two forks away, so it is not flowrun's child: a supervisor
  // process waits for it and writes exit_code. Only async-signal-safe calls after fork().
  void start_supervised(const fs::path& dir, const InstanceSpec& spec) {
    std::map<std::string, std::string> env;
    for (char** e = environ; *e; ++e) {
      std::string kv = *e;
      auto eq = kv.find('=');
      if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (const auto& [k, v] : spec.env) env[k] = v;
    env["FLOWRUN_PROJECT_ROOT"] = fs::absolute(project_root_).string();
    env["FLOWRUN_INSTANCE_DIR"] = fs::absolute(dir).string();
    std::vector<std::string> env_strings;
    for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::string sh = "/bin/sh", dash_c = "-c", command = spec.start_command;
    char* argv[] = {sh.data(), dash_c.data(), command.data(), nullptr};
    std::string dir_s = fs::absolute(dir).string(), log_s = dir_s + "/log", exit_tmp = dir_s + "/exit_code.tmp",
                exit_s = dir_s + "/exit_code";
    sigset_t none;
    sigemptyset(&none);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);

    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) throw StepError::transient(std::string("pipe: ") + std::strerror(errno));
    pid_t first = ::fork();
    if (first < 0) throw StepError::transient(std::string("fork: ") + std::strerror(errno));
    if (first == 0) {
      ::setsid();  // a session and process group of its own; its id is `first`
      // Nothing of it may hold flowrun's stdin, stdout or stderr: whoever reads flowrun's
      // output (a pipe, a terminal multiplexer) would otherwise wait for the instance too.
      int null_fd = ::open("/dev/null", O_RDWR);
      if (null_fd >= 0) {
        ::dup2(null_fd, 0);
        ::dup2(null_fd, 1);
        ::dup2(null_fd, 2);
        if (null_fd > 2) ::close(null_fd);
      }
      pid_t supervisor = ::fork();
      if (supervisor != 0) {
        (void)!::write(pipefd[1], &supervisor, sizeof supervisor);
        ::_exit(0);
      }
      ::sigprocmask(SIG_SETMASK, &none, nullptr);  // flowrun blocks SIGINT/SIGTERM for its signal thread
      for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);  // and ignores SIGPIPE
      pid_t job = ::fork();
      if (job == 0) {
        int log = ::open(log_s.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
        int null = ::open("/dev/null", O_RDONLY);
        if (log < 0 || null < 0 || ::chdir(dir_s.c_str()) != 0) ::_exit(127);
        ::dup2(null, 0);
        ::dup2(log, 1);
        ::dup2(log, 2);
        close_inherited_fds();
        ::execve(argv[0], argv, envp.data());
        ::_exit(127);
      }
      close_inherited_fds();
      int status = 0;
      while (job > 0 && ::waitpid(job, &status, 0) < 0 && errno == EINTR) {
      }
      int code = job < 0 ? 127 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      int fd = ::open(exit_tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd >= 0) {
        write_number(fd, code);
        ::close(fd);
        ::rename(exit_tmp.c_str(), exit_s.c_str());
      }
      ::_exit(0);
    }
    ::close(pipefd[1]);
    pid_t supervisor = 0;
    ssize_t got = ::read(pipefd[0], &supervisor, sizeof supervisor);
    ::close(pipefd[0]);
    int status = 0;
    ::waitpid(first, &status, 0);
    if (got != sizeof supervisor) throw StepError::transient("could not start the local instance");
    write_file_atomically(dir / "pid", std::to_string(supervisor) + " " + std::to_string(first) + " " +
                                           process_start_ticks(supervisor) + "\n");
  }

  fs::path root_;
  fs::path project_root_;
  double price_per_hour_;
};

std::unique_ptr<InstanceProvider> make_local_provider(StepContext& ctx) {
  const Services& s = ctx.services();
  fs::path state = s.state_dir.empty() ? s.project_root / ".flowrun" : s.state_dir;
  // A re-provision from wait-for-marker keeps the price provision was given (outputs.instance.spec).
  const Json& instance = ctx.with().contains("instance") ? ctx.with()["instance"] : Json();
  const Json spec = instance.is_object() ? instance.value("spec", Json::object()) : Json::object();
  const double price = ctx.number_param("price_per_hour").value_or(json_number(spec, "price_per_hour").value_or(0));
  if (price < 0) throw StepError::permanent("price_per_hour of the local provider must not be negative");
  return std::make_unique<LocalProvider>(state / "local-instances", s.project_root, price);
}

}  // namespace

ProviderEntry local_provider() {
  return {.name = "local",
          .summary = "a local process",
          .params = {{"price_per_hour", ParamType::kNumber, false,
                      "local: a simulated price in dollars per hour (default 0), so cost shows in demos and tests"}},
          .make = make_local_provider};
}

}  // namespace flowrun
