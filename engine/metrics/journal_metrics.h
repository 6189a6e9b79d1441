#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace prometheus {
struct MetricFamily;
class Registry;
}  // namespace prometheus

namespace flowrun {

class Journal;
class SqliteDb;

// Metrics read from the journal at scrape time, for `flowrun serve`'s /metrics: what every run
// in the journal did, whichever process ran it. A few aggregate queries in one read transaction
// (the events table is scanned once), so a scrape of a big journal stays cheap. Counters count
// the runs the journal keeps: pruning old ticks lowers them (Prometheus reads that as a reset).
//   flowrun_runs_total{workflow,outcome}            runs that are not running, by their status
//   flowrun_items_total{outcome}                    item_succeeded / item_failed events
//   flowrun_step_retries_total{type,error_kind}     retry events
//   flowrun_step_failures_total{type,error_kind}    failed and timeout events
//   flowrun_stalls_total, flowrun_stall_recoveries_total, flowrun_restart_loops_total
//   flowrun_instances_running                       instance_started without instance_destroyed
//                                                   in a run still running or detached
//   flowrun_instance_hours_total                    started -> destroyed (or now while the run is
//   flowrun_instance_cost_dollars_total             running, else the run's last update), x price
//   flowrun_notifications_total{channel,outcome}    outbox rows by status
// Throws SqliteError when the journal cannot be read.
std::vector<prometheus::MetricFamily> journal_metric_families(SqliteDb& db, int64_t now_ms);
// flowrun_notifications_total alone (empty family when there is no outbox table yet).
prometheus::MetricFamily notification_family(SqliteDb& db);

// The text exposition (format 0.0.4) of journal_metric_families() on its own connection to the
// journal's file.
std::string journal_exposition(Journal& journal, int64_t now_ms);
// The text exposition of what `registry` holds.
std::string registry_exposition(prometheus::Registry& registry);
// Both on one page: the journal's families, then those of `registry` (may be null) whose names
// the journal did not give already (a family may appear only once in an exposition).
std::string metrics_exposition(Journal& journal, prometheus::Registry* registry, int64_t now_ms);

// The registry the runs of this process count into (engine/cli's metrics observer); shared so
// that an Exposer can hold it weakly.
std::shared_ptr<prometheus::Registry> process_metrics_registry();

}  // namespace flowrun
