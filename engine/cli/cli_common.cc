#include "engine/cli/cli_common.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>

#include "engine/io/utf8.h"
#include "engine/journal/journal.h"
#include "engine/lua/lua_step.h"
#include "engine/notify/notifier.h"
#include "steps/catalog.h"

namespace flowrun {
namespace {

bool json_output = false;

}  // namespace

void set_json_output(bool on) { json_output = on; }

void print_error(const std::string& message) {
  if (json_output)
    std::cerr << dump_json(Json{{"level", "ERROR"}, {"message", message}}) << "\n";
  else
    std::cerr << "flowrun: " << message << "\n";
}

void print_diagnostic(const Diagnostic& d, const std::string& source) {
  if (json_output)
    std::cerr << dump_json(Json{{"level", "ERROR"},
                                {"file", d.loc.file},
                                {"line", d.loc.line},
                                {"column", d.loc.col},
                                {"message", d.message},
                                {"hint", d.hint}})
              << "\n";
  else
    std::cerr << format_diagnostic(d, source);
}

std::optional<int> parse_args(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
    return std::nullopt;
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::string what = e.what();
    std::replace(what.begin(), what.end(), '\n', ' ');
    std::cerr << "flowrun: " << what << "\n  hint: " << app.get_name() << " --help\n";
    return kExitUsage;
  }
}

void build_registry(StepRegistry& registry, const std::filesystem::path& root) {
  register_builtin_steps(registry);
  Diagnostics problems;
  register_lua_step_types(registry, root / "scripts" / "steps", root, problems);
  for (const auto& d : problems.items()) print_error("warning: Lua step type not loaded: " + d.message);
}

LoadResult load(const std::string& file, StepRegistry& registry) {
  build_registry(registry, find_project_root(file));
  return load_with(file, registry);
}

LoadResult load_with(const std::string& file, const StepRegistry& registry) {
  LoadResult result = load_workflow_file(file, registry);
  for (const auto& d : result.diagnostics.items()) print_diagnostic(d, result.source);
  return result;
}

std::optional<Json> inputs_from_sets(const LoadResult& loaded, const std::vector<std::string>& sets,
                                     MissingRequired missing) {
  std::map<std::string, std::string> overrides;
  for (const auto& s : sets) {
    auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "flowrun: --set expects name=value, got '" << s << "'\n";
      return std::nullopt;
    }
    overrides[s.substr(0, eq)] = s.substr(eq + 1);
  }
  Diagnostics problems;
  Json inputs = resolve_inputs(*loaded.workflow, overrides, problems, missing);
  for (const auto& d : problems.items()) print_diagnostic(d, loaded.source);
  if (!problems.empty()) return std::nullopt;
  return inputs;
}

std::optional<Redactor> secrets_redactor(const Workflow& workflow, const Json& inputs,
                                         const std::vector<std::string>& extra) {
  Redactor redactor;
  for (const auto& name : workflow.secrets) {
    if (const char* v = std::getenv(name.c_str()); v && !redactor.add_secret(v)) {
      std::cerr << "flowrun: secret " << name << " is shorter than " << Redactor::kMinSecretLength
                << " characters, too short to redact from logs and the journal; give it a longer value\n";
      return std::nullopt;
    }
  }
  // Notification targets (a webhook's URL, a password) are secrets too; a text too short to
  // redact is no secret worth the name (a port, a user name), so it is left as it is.
  if (workflow.notify && inputs.is_object()) {
    const Json scope = channel_scope(workflow, inputs, environment_json());
    for (const auto& channel : workflow.notify->channels) {
      const Json target = resolve_channel_target(channel, scope);
      if (!target.is_null())
        for (const auto& secret : target_secrets(target)) redactor.add_secret(secret);
    }
  }
  for (const auto& secret : extra) redactor.add_secret(secret);
  return redactor;
}

void add_state_dir(CLI::App& app, std::string& state_dir) {
  const char* env = std::getenv("FLOWRUN_STATE_DIR");
  state_dir = env && *env ? env : ".flowrun";
  app.add_option("--state-dir", state_dir, "where the journal lives (default: $FLOWRUN_STATE_DIR or .flowrun)");
}

std::unique_ptr<Journal> open_journal(const std::string& state_dir) {
  try {
    return Journal::open(state_dir);
  } catch (const JournalError& e) {
    print_error(e.what());
    return nullptr;
  }
}

}  // namespace flowrun
