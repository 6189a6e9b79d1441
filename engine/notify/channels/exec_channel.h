#pragma once
#include "engine/notify/channel.h"

namespace flowrun {

// `type: exec`: runs target.argv (a list of strings, never through a shell) with the event's JSON
// on stdin and FLOWRUN_EVENT / FLOWRUN_RUN_ID (the payload's event and run) in its environment; exit 0 is delivered,
// anything else (an exit code, a signal, target.timeout, default 30s) is transient with the end of stderr.
const Channel& exec_channel();

}  // namespace flowrun
