#include "engine/runtime/dry_run.h"

#include <string_view>

#include "engine/sandbox/expression.h"

namespace flowrun {

bool reads_missing_outputs(const ExpressionError& e) {
  // What Lua says when an expression reads through a nil: the outputs a dry run lacks.
  return std::string_view(e.what()).find("nil value") != std::string_view::npos;
}

}  // namespace flowrun
