#include "engine/io/step_error.h"

namespace flowrun {

StepError StepError::exit(int code, const std::string& m) {
  StepError e(ErrorKind::kExit, m);
  e.exit_code_ = code;
  return e;
}

StepError StepError::http(int status, const std::string& m, std::optional<Duration> retry_after) {
  bool transient = status == 429 || status >= 500;
  StepError e(transient ? ErrorKind::kTransient : ErrorKind::kPermanent, m);
  e.http_status_ = status;
  e.retry_after_ = retry_after;
  return e;
}

std::string StepError::kind_name() const {
  std::string name;
  switch (kind_) {
    case ErrorKind::kTransient:
      name = "transient";
      break;
    case ErrorKind::kPermanent:
      name = "permanent";
      break;
    case ErrorKind::kTimeout:
      name = "timeout";
      break;
    case ErrorKind::kCancelled:
      name = "cancelled";
      break;
    case ErrorKind::kExit:
      name = "exit:" + std::to_string(exit_code_);
      break;
  }
  if (http_status_) name += " (http " + std::to_string(http_status_) + ")";
  return name;
}

std::optional<ErrorKind> parse_error_kind(const std::string& name) {
  if (name == "transient") return ErrorKind::kTransient;
  if (name == "permanent") return ErrorKind::kPermanent;
  if (name == "timeout") return ErrorKind::kTimeout;
  return std::nullopt;
}

}  // namespace flowrun
