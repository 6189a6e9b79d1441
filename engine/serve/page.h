#pragma once
#include <string>

namespace flowrun {

// The live view's one page (inline CSS and JS, nothing fetched but the JSON API): `nonce` marks
// its script and style for the Content-Security-Policy, `csrf` is the value its cancel button
// sends in X-Flowrun-Csrf. Both must be hex (they are placed in attributes as they are).
std::string live_view_page(const std::string& nonce, const std::string& csrf);

}  // namespace flowrun
