#pragma once
// Expressions as step types use them: a condition over what the step observed (a probe's or a
// health check's `until`), checked for syntax when the workflow loads (ExpressionEvaluator,
// expression_syntax_error, ExpressionError), and the text form of a value (interpolation_text).
// The language itself lives in engine/sandbox; step types reach it only through this header.
#include "engine/sandbox/expression.h"
