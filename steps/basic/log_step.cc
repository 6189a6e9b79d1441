#include "engine/io/logging.h"
#include "engine/io/step_error.h"
#include "engine/step_api/step_context.h"
#include "steps/basic/basic_steps.h"

namespace flowrun {
namespace {

class LogStep final : public StepType {
 public:
  const StepInfo& info() const override {
    static const StepInfo info{
        .name = "log",
        .summary = "Write a message to the log",
        .params = {{"message", ParamType::kString, true, "the text; ${{ }} expressions are interpolated"},
                   {"level", ParamType::kString, false, "debug, info (default), warn or error"}},
        .side_effects = false};
    return info;
  }
  void validate(const Json& with, std::vector<std::pair<std::string, std::string>>& problems) const override {
    if (with.contains("level") && with["level"].is_string() && !parse_log_level(with["level"].get<std::string>()))
      problems.emplace_back("level",
                            "unknown log level '" + with["level"].get<std::string>() + "' (debug, info, warn, error)");
  }
  Json run(StepContext& ctx) const override {
    std::string message = ctx.string_param("message");
    auto level = parse_log_level(ctx.string_param("level", "info"));
    if (!level) throw StepError::permanent("unknown log level '" + ctx.string_param("level") + "'");
    ctx.log().log(*level, message);
    return {{"message", message}};
  }
};

// Declares outputs from expressions: `with` is resolved and becomes the outputs.
class SetStep final : public StepType {
 public:
  const StepInfo& info() const override {
    static const StepInfo info{
        .name = "set",
        .summary = "Declare outputs: every `with` key becomes an output, expressions resolved",
        .params = {{"*", ParamType::kAny, false, "any name: its resolved value becomes an output"}},
        .side_effects = false};
    return info;
  }
  Json run(StepContext& ctx) const override { return ctx.with(); }
};

}  // namespace

std::unique_ptr<StepType> make_log_step() { return std::make_unique<LogStep>(); }
std::unique_ptr<StepType> make_set_step() { return std::make_unique<SetStep>(); }

}  // namespace flowrun
