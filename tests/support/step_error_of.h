#pragma once
#include <catch2/catch.hpp>
#include <functional>

#include "engine/io/step_error.h"

namespace flowrun::test {

// The StepError `f` throws; the test fails when it throws none.
inline StepError step_error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const StepError& e) {
    return e;
  }
  FAIL("no StepError");
  return StepError::permanent("");
}

}  // namespace flowrun::test
