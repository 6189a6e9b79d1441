#pragma once
// An ExecutionRecorder that keeps what it is told in memory, for tests of what steps and the
// runtime report (events, live patches, step rows). Thread-safe.
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "engine/step_api/execution_recorder.h"
#include "engine/step_api/live_patch.h"

namespace flowrun::test {

class FakeRecorder final : public ExecutionRecorder {
 public:
  struct Event {
    std::string path, kind, message;
    Json data;
  };
  struct Patch {
    std::string path;
    Json patch;
  };

  std::optional<RecordedStep> recorded(const std::string& path) override {
    std::lock_guard lock(mutex_);
    auto it = steps_.find(path);
    if (it == steps_.end()) return std::nullopt;
    return it->second;
  }
  bool started_under(const std::string& path) override {
    std::lock_guard lock(mutex_);
    for (const auto& [p, s] : steps_)
      if (p == path || p.rfind(path + ".", 0) == 0 || p.rfind(path + "[", 0) == 0) return true;
    return false;
  }
  void step_started(const std::string& path, int attempt) override {
    std::lock_guard lock(mutex_);
    steps_[path].status = "running";
    steps_[path].attempts = attempt;
  }
  void step_finished(const std::string& path, const std::string& status, int attempts, const Json& outputs,
                     const std::string&, const std::string& error, Durability) override {
    std::lock_guard lock(mutex_);
    steps_[path] = RecordedStep{status, outputs, error, attempts, 1};
  }
  void event(const std::string& path, const std::string& kind, const std::string& message, const Json& data) override {
    std::lock_guard lock(mutex_);
    events_.push_back({path, kind, message, data});
  }
  void live(const std::string& path, const Json& patch) override {
    std::lock_guard lock(mutex_);
    patches_.push_back({path, patch});
    merge_live_patch(state_[path], patch);
  }

  std::vector<Event> events() const {
    std::lock_guard lock(mutex_);
    return events_;
  }
  // The events of one kind.
  std::vector<Event> events(const std::string& kind) const {
    std::vector<Event> out;
    for (auto& e : events())
      if (e.kind == kind) out.push_back(e);
    return out;
  }
  std::vector<Patch> patches() const {
    std::lock_guard lock(mutex_);
    return patches_;
  }
  // The patches of `path` merged.
  Json state(const std::string& path) const {
    std::lock_guard lock(mutex_);
    auto it = state_.find(path);
    return it == state_.end() ? Json() : it->second;
  }
  // Marks `path` as recorded by an earlier process (a resume).
  void set_recorded(const std::string& path, const std::string& status) {
    std::lock_guard lock(mutex_);
    steps_[path] = RecordedStep{status, Json::object(), "", 1, 1};
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, RecordedStep> steps_;
  std::vector<Event> events_;
  std::vector<Patch> patches_;
  std::map<std::string, Json> state_;
};

}  // namespace flowrun::test
