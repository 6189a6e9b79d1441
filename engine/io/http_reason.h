#pragma once
#include <string>
#include <string_view>

namespace flowrun {

// The short reason a server gave in an error reply's body, for one line of a message: a JSON
// error's message ({"error": {"message"}}, "message", "msg", "detail", "error"), an HTML page's
// <title> (or first <h1>), else the first line of the text; at most 200 characters, one line.
// Empty for an empty body.
std::string error_reason(std::string_view body);

}  // namespace flowrun
