#include "engine/metrics/metrics_recorder.h"

#include <algorithm>

#include "engine/metrics/run_metrics.h"
#include "engine/metrics/step_type_of.h"
#include "engine/model/workflow.h"

namespace flowrun {
namespace {

// The path without item indexes and nested-run numbers: "videos[2].wait" -> "videos.wait".
std::string without_indexes(const std::string& path) {
  std::string out;
  out.reserve(path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '[' || path[i] == '#') {
      while (i < path.size() && path[i] != '.') ++i;
      if (i < path.size()) out += '.';
      continue;
    }
    out += path[i];
  }
  return out;
}

std::string text_field(const Json& data, const char* key) {
  if (!data.is_object() || !data.contains(key)) return "";
  const Json& v = data[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

double number_field(const Json& data, const char* key) {
  if (!data.is_object() || !data.contains(key)) return 0;
  const Json& v = data[key];
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    try {
      return std::stod(v.get<std::string>());
    } catch (const std::exception&) {
    }
  }
  return 0;
}

double seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

MetricsRecorder::MetricsRecorder(std::unique_ptr<ExecutionRecorder> inner, RunMetrics& metrics,
                                 const Workflow& workflow, Clock& clock)
    : ForwardingRecorder(std::move(inner)), metrics_(metrics), workflow_(workflow), index_(workflow), clock_(clock) {}

std::string MetricsRecorder::type_of(const std::string& path) {
  const std::string key = without_indexes(path);
  MutexLock lock(mutex_);
  auto it = types_.find(key);
  if (it == types_.end()) it = types_.emplace(key, step_type_label(workflow_, path, &index_)).first;
  return it->second;
}

void MetricsRecorder::seen(const std::string& path) {
  const TimePoint now = clock_.now();
  MutexLock lock(mutex_);
  started_.emplace(path, now);  // keeps the first
}

std::optional<RecordedStep> MetricsRecorder::recorded(const std::string& path) {
  try {
    seen(path);
  } catch (const std::exception&) {
  }
  return ForwardingRecorder::recorded(path);
}

void MetricsRecorder::step_started(const std::string& path, int attempt) {
  try {
    seen(path);
  } catch (const std::exception&) {
  }
  ForwardingRecorder::step_started(path, attempt);
}

void MetricsRecorder::step_finished(const std::string& path, const std::string& status, int attempts,
                                    const Json& outputs, const std::string& error_kind, const std::string& error,
                                    Durability durability) {
  ForwardingRecorder::step_finished(path, status, attempts, outputs, error_kind, error, durability);
  try {
    const Step* step = step_at_path(workflow_, path, &index_);
    std::optional<TimePoint> started;
    {
      MutexLock lock(mutex_);
      if (auto it = started_.find(path); it != started_.end()) {
        started = it->second;
        started_.erase(it);
      }
    }
    // Only actions that ran: a for_each or group is the sum of its steps, a skipped step did nothing.
    if (!step || step->kind != Step::Kind::kAction || attempts <= 0) return;
    const std::string type = type_of(path);
    metrics_.step_finished(type, attempts);
    if (started) metrics_.step_duration(type, seconds(clock_.now() - *started));
  } catch (const std::exception&) {
  }
}

void MetricsRecorder::event(const std::string& path, const std::string& kind, const std::string& message,
                            const Json& data) {
  ForwardingRecorder::event(path, kind, message, data);
  try {
    if (kind == "retry" || kind == "failed" || kind == "timeout") {
      std::string error_kind = text_field(data, "error_kind");
      if (error_kind.empty()) error_kind = kind == "timeout" ? "timeout" : "unknown";
      if (kind == "retry")
        metrics_.retried(type_of(path), error_kind);
      else
        metrics_.failed(type_of(path), error_kind);
    } else if (kind == "item_succeeded") {
      metrics_.item("succeeded");
    } else if (kind == "item_failed") {
      metrics_.item("failed");
    } else if (kind == "stalled") {
      metrics_.stalled();
    } else if (kind == "recovered") {
      metrics_.recovered();
    } else if (kind == "restart_loop") {
      metrics_.restart_loop();
    } else if (kind == "instance_started") {
      const std::string id = text_field(data, "instance");
      const TimePoint now = clock_.now();
      MutexLock lock(mutex_);
      // The same instance reported twice (a resumed provision) is one machine.
      if (instances_.emplace(id, Instance{now, number_field(data, "price_per_hour")}).second)
        metrics_.instance_started();
    } else if (kind == "instance_destroyed") {
      const std::string id = text_field(data, "instance");
      const TimePoint now = clock_.now();
      MutexLock lock(mutex_);
      // One started by an earlier process of the run is not in this process's gauge.
      if (auto it = instances_.find(id); it != instances_.end()) {
        count_instance_time(it->second, now);
        instances_.erase(it);
        metrics_.instance_destroyed();
      }
    }
  } catch (const std::exception&) {
  }
}

void MetricsRecorder::polled(const std::string& path, Duration latency, bool ok) {
  ForwardingRecorder::polled(path, latency, ok);
  try {
    metrics_.polled(type_of(path), seconds(latency), ok);
  } catch (const std::exception&) {
  }
}

void MetricsRecorder::count_instance_time(Instance& instance, TimePoint now) {
  const double hours = std::max(0.0, seconds(now - instance.counted_from) / 3600.0);
  metrics_.instance_time(hours, hours * instance.price_per_hour);
  instance.counted_from = now;
}

void MetricsRecorder::settle_instances() {
  try {
    const TimePoint now = clock_.now();
    MutexLock lock(mutex_);
    for (auto& [id, instance] : instances_) count_instance_time(instance, now);
  } catch (const std::exception&) {
  }
}

}  // namespace flowrun
