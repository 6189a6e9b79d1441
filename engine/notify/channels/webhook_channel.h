#pragma once
#include "engine/notify/channel.h"

namespace flowrun {

// `type: webhook`, settings {url, timeout?}: a JSON POST of the payload with the header
// `Idempotency-Key: <delivery_key>`. 2xx delivered; 429, 5xx and network trouble transient; any
// other status permanent. The URL is a secret: no error message names it.
const Channel& webhook_channel();

}  // namespace flowrun
