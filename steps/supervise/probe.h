#pragma once
// A probe: one look at a system's state as a JSON object, for stall-check and for
// restart-container's wait_healthy.
#include <string>

#include "engine/io/json.h"

namespace flowrun {

class StepContext;

// `spec` is {http: {url, method, headers, query, json | body, timeout}} (the response body is
// the JSON) or {exec: {argv: [...], env, cwd, timeout}} (stdout is the JSON). Throws
// StepError: transient when the system did not answer (network, 429, 5xx, a command that
// failed, an answer that is not a JSON object), permanent for other HTTP statuses.
Json run_probe(const Json& spec, StepContext& ctx);

// Whether `condition` (an expression such as "processing == 0 and pending > 0") holds over an
// observation: its fields are globals, and the whole object is `observation`. A condition that
// does not evaluate throws StepError::permanent "<where>: <why>".
bool probe_condition(const std::string& condition, const Json& observation, const std::string& where);

}  // namespace flowrun
