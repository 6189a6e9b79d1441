#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/cli/run_observer.h"

namespace flowrun {

// Notifications of runs (engine/notify): enqueues what the workflow's `notify.on` routes, delivers
// the outbox of every run on the state dir in the background while a run goes on, and at its end
// waits up to `notify.grace` for what is due. Never fails a run.
std::unique_ptr<RunObserver> make_notify_observer(Journal& journal, const std::string& serve_address);

// The channel targets an earlier process of `run_id` stored (secrets the redactor must know on a
// resume, whose recorded inputs are redacted); empty when there are none or the outbox is unreadable.
std::vector<std::string> stored_notify_secrets(const std::string& journal_path, const std::string& run_id);

}  // namespace flowrun
