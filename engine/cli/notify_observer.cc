#include "engine/cli/notify_observer.h"

#include <iostream>
#include <optional>
#include <thread>

#include "engine/io/cancel_token.h"
#include "engine/io/clock.h"
#include "engine/io/http_client.h"
#include "engine/io/logging.h"
#include "engine/io/process_runner.h"
#include "engine/io/redactor.h"
#include "engine/journal/journal.h"
#include "engine/load/inputs.h"
#include "engine/model/workflow.h"
#include "engine/notify/deliverer.h"
#include "engine/notify/notifier.h"
#include "engine/notify/notify_recorder.h"
#include "engine/notify/outbox.h"
#include "engine/runtime/executor.h"

namespace flowrun {
namespace {

constexpr Duration kPollEvery{std::chrono::milliseconds(200)};

// The failed and all items of the run's top-level for_each steps (their `failed` and `count`
// outputs), so that "partial" says how partial; none without a for_each.
std::optional<std::pair<int64_t, int64_t>> item_counts(const Json& steps) {
  int64_t failed = 0, total = 0;
  bool any = false;
  for (const auto& [id, step] : steps.items()) {
    const Json outputs = step.value("outputs", Json::object());
    if (!outputs.is_object() || !outputs.value("count", Json()).is_number_integer() ||
        !outputs.value("failed", Json()).is_number_integer())
      continue;
    any = true;
    failed += outputs["failed"].get<int64_t>();
    total += outputs["count"].get<int64_t>();
  }
  if (!any) return std::nullopt;
  return std::make_pair(failed, total);
}

class NotifyObserver final : public RunObserver {
 public:
  NotifyObserver(Journal& journal, std::string link_base)
      : journal_path_(journal.path()), link_base_(std::move(link_base)) {}
  ~NotifyObserver() override { stop_delivering(); }

  std::unique_ptr<ExecutionRecorder> run_started(const RunContext& run,
                                                 std::unique_ptr<ExecutionRecorder> recorder) override {
    log_.emplace(run.logs.logger("notify"));
    notifier_.reset();
    if (!open_outbox()) return recorder;
    if (run.workflow.notify) {
      try {
        notifier_ = make_notifier(run);
      } catch (const std::exception& e) {
        warn(std::string("notifications are off for this run: ") + e.what());
      }
    }
    start_delivering();
    if (!notifier_) return recorder;
    return std::make_unique<NotifyRecorder>(std::move(recorder), notifier_, [this](const std::string& m) { warn(m); });
  }

  void run_ending(const RunContext& run, RunState state, const RunResult& result) override {
    if (!notifier_ || state == RunState::kDetached || state == RunState::kRunning) return;
    try {
      const std::string kind = to_string(state);
      if (notifier_->routes(kind)) {
        Json data = Json::object();
        if (!result.error.empty()) data["error"] = result.error;
        std::string message = "run " + run.run_id + " of " + run.workflow.name + " " + kind;
        if (auto counts = item_counts(result.steps)) {
          data["failed"] = counts->first;
          data["total"] = counts->second;
          message += ": " + std::to_string(counts->first) + " of " + std::to_string(counts->second) + " items failed";
        }
        notifier_->notify("", kind, message, data.empty() ? Json(nullptr) : data);
      }
      notifier_->flush();
    } catch (const std::exception& e) {
      warn(std::string("notifications: could not enqueue the run's end: ") + e.what());
    }
  }

  void run_ended(const RunContext& run, RunState state) override {
    (void)state;
    if (!outbox_) return;
    const Duration grace = run.workflow.notify ? run.workflow.notify->grace : Duration::zero();
    const auto deadline = clock_.now() + grace;
    int left = 0;
    try {
      for (;;) {
        left = outbox_->pending(run.run_id);
        if (left == 0 || clock_.now() >= deadline) break;
        CancelToken never;
        clock_.sleep_for(std::min<Duration>(kPollEvery, std::chrono::duration_cast<Duration>(deadline - clock_.now())),
                         never);
      }
    } catch (const std::exception& e) {
      warn(std::string("notifications: cannot read the outbox: ") + e.what());
    }
    stop_delivering();
    notifier_.reset();
    if (left > 0)
      std::cerr << "notifications: " << left
                << " pending; delivered by the next flowrun on this state dir or `flowrun notify deliver`\n";
  }

 private:
  bool open_outbox() {
    if (outbox_) {
      forget_pruned_runs();  // a monitor's next tick: the runs pruned after the last one
      return true;
    }
    try {
      outbox_ = std::make_unique<Outbox>(journal_path_);
      forget_pruned_runs();
      return true;
    } catch (const std::exception& e) {
      warn(std::string("notifications are off: cannot open the outbox: ") + e.what());
      return false;
    }
  }

  std::shared_ptr<Notifier> make_notifier(const RunContext& run) {
    const NotifySpec& spec = *run.workflow.notify;
    const Json scope = channel_scope(run.workflow, run.inputs, environment_json());
    std::map<std::string, Json> targets;
    for (const auto& channel : spec.channels) {
      Json target = resolve_channel_target(channel, scope);
      if (target.is_null()) continue;  // off
      // A resumed run's inputs are redacted: the target its first process stored wins.
      targets[channel.name] = outbox_->remember_target(run.run_id, channel.name, target);
    }
    const Redactor& redactor = run.redactor;
    auto notifier = std::make_shared<Notifier>(
        spec, std::move(targets), *outbox_, run.run_id, run.workflow.name,
        [&redactor](const Json& payload) { return redactor.redact_json(payload); }, [] { return wall_clock_ms(); });
    notifier->set_link_base(link_base_);
    return notifier;
  }

  void forget_pruned_runs() {
    try {
      outbox_->forget_pruned_runs();
    } catch (const std::exception& e) {
      warn(std::string("notifications: could not drop the rows of pruned runs: ") + e.what());
    }
  }

  void start_delivering() {
    if (thread_.joinable()) return;
    stop_ = std::make_unique<CancelToken>();
    ChannelServices services{http_, processes_, clock_, stop_.get()};
    deliverer_ = std::make_unique<Deliverer>(
        *outbox_, services, random_, [this](const std::string& m) { warn(m); }, [] { return wall_clock_ms(); });
    thread_ = std::thread([this] {
      do {
        deliverer_->deliver_due();
      } while (!stop_->wait_for(kPollEvery));
    });
  }

  void stop_delivering() {
    if (!thread_.joinable()) return;
    stop_->cancel("stopping");
    thread_.join();
  }

  void warn(const std::string& message) {
    if (log_)
      log_->warn(message);
    else
      std::cerr << "flowrun: " << message << "\n";
  }

  std::string journal_path_;
  std::string link_base_;  // http://ADDR of this process's --serve view: payloads link to the run there
  std::unique_ptr<Outbox> outbox_;
  std::shared_ptr<Notifier> notifier_;
  std::optional<StepLog> log_;
  RealClock clock_;
  CurlHttpClient http_;
  SystemProcessRunner processes_;
  SystemRandom random_;
  std::unique_ptr<CancelToken> stop_;
  std::unique_ptr<Deliverer> deliverer_;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<RunObserver> make_notify_observer(Journal& journal, const std::string& serve_address) {
  return std::make_unique<NotifyObserver>(journal, serve_address.empty() ? "" : "http://" + serve_address);
}

std::vector<std::string> stored_notify_secrets(const std::string& journal_path, const std::string& run_id) {
  std::vector<std::string> out;
  try {
    Outbox outbox(journal_path);
    for (const auto& target : outbox.targets_of(run_id))
      for (auto& secret : target_secrets(target)) out.push_back(std::move(secret));
  } catch (const std::exception&) {
    // No outbox yet: nothing stored.
  }
  return out;
}

}  // namespace flowrun
