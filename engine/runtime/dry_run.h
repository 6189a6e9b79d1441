#pragma once

namespace flowrun {

class ExpressionError;

// Whether a dry run's expression failed only because it reads outputs of a step it did not run:
// such a failure is shown, not fatal. Any other error is as real in a dry run as in a run.
bool reads_missing_outputs(const ExpressionError& e);

}  // namespace flowrun
