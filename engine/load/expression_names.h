#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace flowrun {

// Scanners the loader runs over every expression (strings already blanked), written out
// instead of std::regex: compiling the four patterns and running them was ~20,000,000
// instructions of a `flowrun validate` of the shipped workflows, a quarter of it. Each returns
// what std::sregex_iterator over its pattern yields as the name group, in order (matches do not
// overlap: a match's leading character cannot be the end of the one before).

// Names after `prefix.`: the pattern (^|[^\w.])PREFIX\.([A-Za-z_]\w*).
std::vector<std::string> dotted_names(std::string_view code, std::string_view prefix);

// Names called as `name(`: the pattern (^|[^\w.:])([A-Za-z_]\w*)\s*\(.
std::vector<std::string> called_names(std::string_view code);

// The whole text is [A-Za-z_][A-Za-z0-9_]*.
bool is_identifier(std::string_view s);
// The whole text is [-+]?[0-9]+.
bool is_integer_text(std::string_view s);
// The whole text is [-+]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][-+]?[0-9]+)?.
bool is_float_text(std::string_view s);

}  // namespace flowrun
