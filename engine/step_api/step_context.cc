#include "engine/step_api/step_context.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "engine/io/json_text.h"
#include "engine/io/step_error.h"
#include "engine/model/workflow.h"

namespace flowrun {

const std::string& StepContext::step_id() const { return step_.id; }

std::optional<Duration> StepContext::remaining() const {
  if (!deadline_) return std::nullopt;
  return std::max(Duration::zero(), *deadline_ - clock().now());
}

Duration StepContext::bounded(Duration wanted) const {
  auto left = remaining();
  return left ? std::min(wanted, *left) : wanted;
}

void StepContext::check_interrupts() const {
  if (cancel_.cancelled()) throw StepError::cancelled(cancel_.reason());
  if (deadline_ && clock().now() >= *deadline_) throw StepError::timeout("attempt deadline reached");
}

void StepContext::sleep(Duration d) const {
  check_interrupts();
  if (!clock().sleep_for(bounded(d), cancel_)) throw StepError::cancelled(cancel_.reason());
  check_interrupts();
}

std::string StepContext::string_param(const std::string& key, const std::string& fallback) const {
  if (!with_.contains(key) || with_[key].is_null()) return fallback;
  return interpolation_text(with_[key]);
}

std::optional<Duration> StepContext::duration_param(const std::string& key) const { return json_duration(with_, key); }

std::optional<Duration> json_duration(const Json& obj, const std::string& key) {
  if (!obj.is_object() || !obj.contains(key)) return std::nullopt;
  auto d = json_to_duration(obj[key]);
  if (!d && !obj[key].is_null())
    throw StepError::permanent("parameter '" + key + "' is not a duration: " + obj[key].dump());
  return d;
}

bool StepContext::bool_param(const std::string& key, bool fallback) const {
  if (!with_.contains(key) || with_[key].is_null()) return fallback;
  if (!with_[key].is_boolean())
    throw StepError::permanent("parameter '" + key + "' must be true or false, not " + with_[key].dump());
  return with_[key].get<bool>();
}

std::optional<double> StepContext::number_param(const std::string& key) const { return json_number(with_, key); }

std::optional<double> json_number(const Json& obj, const std::string& key) {
  if (!obj.is_object() || !obj.contains(key) || obj[key].is_null()) return std::nullopt;
  const Json& v = obj[key];
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    const std::string& text = v.get_ref<const std::string&>();
    char* end = nullptr;
    double d = std::strtod(text.c_str(), &end);
    if (!text.empty() && end && *end == '\0') return d;
  }
  throw StepError::permanent("parameter '" + key + "' must be a number, not " + v.dump());
}

int StepContext::int_param(const std::string& key, int fallback) const {
  return json_int(with_, key).value_or(fallback);
}

std::optional<int> json_int(const Json& obj, const std::string& key) {
  auto d = json_number(obj, key);
  if (!d) return std::nullopt;
  if (!(std::abs(*d) <= 2e9) || *d != std::trunc(*d))
    throw StepError::permanent("parameter '" + key + "' must be a whole number, not " + obj[key].dump());
  return static_cast<int>(*d);
}

std::optional<Duration> json_to_duration(const Json& value) {
  if (value.is_string()) return parse_duration(value.get<std::string>());
  if (value.is_number()) {
    const double ms = value.get<double>() * 1000;
    // About 290 years either way: beyond that (or NaN) it is no duration, and converting it
    // would be undefined behaviour.
    if (!(std::abs(ms) < 9e15)) return std::nullopt;
    return Duration(static_cast<Duration::rep>(ms));
  }
  return std::nullopt;
}

}  // namespace flowrun
