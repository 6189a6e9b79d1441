#pragma once
// Where rented instances come from. `provision`, `wait-for-marker` and `destroy` speak only
// this interface; each provider lives in providers/NAME/ and is listed in providers/registry.h
// (`vastai` speaks the Vast.ai REST API, `local` runs the start command as a local process). Every call may throw
// StepError: transient for network trouble, HTTP 429 and 5xx (already retried a few times inside), permanent for the
// rest.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "engine/io/json.h"

namespace flowrun {

class StepContext;

struct OfferFilter {
  std::string gpu_name;                   // empty: any
  std::optional<double> max_price;        // dollars per hour, all costs included
  std::optional<double> min_reliability;  // 0..1
  int num_gpus = 1;
  double disk_gb = 10;
};

struct Offer {
  std::string id;
  std::string gpu_name;
  int num_gpus = 1;
  double price_per_hour = 0;
  double reliability = 1;
};

// What to run on the instance.
struct InstanceSpec {
  std::string image;
  std::string start_command;  // a shell script, as Vast's `onstart`
  std::map<std::string, std::string> env;
  double disk_gb = 10;
  std::string label;  // how re-entry finds the instance again
};

// What a provider says about an instance. `status` is the provider's own word (Vast's
// actual_status: loading, running, exited, stopped, offline, unknown...).
struct InstanceState {
  std::string id;
  std::string status;
  std::string message;  // why, when the provider says (status_msg, an exit code)
  std::string label;
  std::string gpu_name;
  double price_per_hour = 0;
};

// create() rented the offer and started the instance.
struct InstanceCreated {
  std::string id;
};
// create() found the offer taken by someone else in the meantime: the caller falls over to the
// next offer. An expected outcome of renting, so a value rather than an exception.
struct OfferGone {
  std::string message;
};
using CreateResult = std::variant<InstanceCreated, OfferGone>;

class InstanceProvider {
 public:
  virtual ~InstanceProvider() = default;
  virtual std::string name() const = 0;
  // Offers matching the filter, cheapest first.
  virtual std::vector<Offer> search_offers(const OfferFilter& filter, StepContext& ctx) = 0;
  // Rents `offer` and starts `spec` on it: the new instance's id, or OfferGone.
  virtual CreateResult create(const Offer& offer, const InstanceSpec& spec, StepContext& ctx) = 0;
  // The instance, or nullopt when it does not exist (never did, or destroyed).
  virtual std::optional<InstanceState> get(const std::string& id, StepContext& ctx) = 0;
  // Every live instance carrying exactly this label.
  virtual std::vector<InstanceState> find_by_label(const std::string& label, StepContext& ctx) = 0;
  // The end of the instance's log: at most `tail_lines` lines, maybe fewer when the provider
  // keeps only a window. Throws StepError::permanent when the instance does not exist.
  virtual std::string logs(const std::string& id, int tail_lines, StepContext& ctx) = 0;
  // Destroys the instance. Returns false when it was already gone (which is fine).
  virtual bool destroy(const std::string& id, StepContext& ctx) = 0;
};

// Statuses after which an instance will not run its job to the end.
bool instance_stopped_for_good(const std::string& status);

// The label `provision` gives the instance of step `step_id`, as seen from `own_path` in the same
// for_each item: "flowrun:RUN:videos[2]:gpu". destroy computes the same label from its own path.
std::string instance_label(const std::string& run_id, const std::string& own_path, const std::string& step_id);

}  // namespace flowrun
