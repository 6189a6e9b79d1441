// `flowrun notify`: the outbox of notifications (engine/notify/outbox.h), listed without targets,
// or delivered now.
#include <CLI/CLI.hpp>
#include <iomanip>
#include <iostream>

#include "engine/cli/cli_common.h"
#include "engine/cli/commands.h"
#include "engine/io/clock.h"
#include "engine/io/http_client.h"
#include "engine/io/process_runner.h"
#include "engine/io/utc_time.h"
#include "engine/io/utf8.h"
#include "engine/journal/journal.h"
#include "engine/notify/deliverer.h"
#include "engine/notify/notifier.h"
#include "engine/notify/outbox.h"

namespace flowrun {

void add_notify_options(CLI::App& app, NotifyOptions& o) {
  app.add_option("action", o.action, "list (default) or deliver")->check(CLI::IsMember({"list", "deliver"}));
  app.add_option("-n,--limit", o.limit, "how many to list (default 50)");
  app.add_flag("--json", o.json, "machine-readable output");
  add_state_dir(app, o.state_dir);
}

namespace {

int list_outbox(Outbox& outbox, const NotifyOptions& o) {
  auto rows = outbox.list(o.limit);
  if (o.json) {
    Json out = Json::array();
    for (const auto& r : rows)  // never the target: it holds the channel's secrets
      out.push_back({{"delivery_key", r.delivery_key},
                     {"run", r.run_id},
                     {"channel", r.channel},
                     {"event", r.event},
                     {"path", r.path},
                     {"status", r.status},
                     {"attempts", r.attempts},
                     {"last_error", r.last_error},
                     {"created", rfc3339_ms(r.created_ms)},
                     {"sent", r.sent_ms ? Json(rfc3339_ms(r.sent_ms)) : Json()}});
    std::cout << dump_json(out, 2) << "\n";
    return kExitOk;
  }
  if (rows.empty()) {
    std::cout << "no notifications\n";
    return kExitOk;
  }
  std::cout << std::left << std::setw(25) << "CREATED" << std::setw(11) << "STATUS" << std::setw(9) << "ATTEMPTS"
            << "KEY\n";
  for (const auto& r : rows) {
    std::cout << std::setw(25) << rfc3339_ms(r.created_ms) << std::setw(11) << r.status << std::setw(9) << r.attempts
              << r.delivery_key;
    if (!r.last_error.empty() && r.status != "sent") std::cout << "  (" << r.last_error << ")";
    std::cout << "\n";
  }
  return kExitOk;
}

int deliver_outbox(Outbox& outbox) {
  RealClock clock;
  CurlHttpClient http;
  SystemProcessRunner processes;
  SystemRandom random;
  outbox.all_due_by(wall_clock_ms());
  const int before = outbox.pending();
  Deliverer deliverer(
      outbox, ChannelServices{http, processes, clock}, random, [](const std::string& m) { print_error(m); },
      [] { return wall_clock_ms(); });
  const int settled = deliverer.deliver_due();
  const int left = outbox.pending();
  std::cout << "notifications: " << before << " pending, " << settled << " settled (sent, or failed for good), " << left
            << " still pending\n";
  return left == 0 ? kExitOk : kExitFailed;
}

}  // namespace

int cmd_notify(NotifyOptions& o) {
  auto journal = open_journal(o.state_dir);
  if (!journal) return kExitUsage;
  try {
    Outbox outbox(journal->path());
    return o.action == "deliver" ? deliver_outbox(outbox) : list_outbox(outbox, o);
  } catch (const std::exception& e) {
    print_error(std::string("cannot read the notification outbox: ") + e.what());
    return kExitFailed;
  }
}

}  // namespace flowrun
