#pragma once
// What every command of the CLI shares: exit codes, how the CLI itself reports an error, how a
// command parses its arguments and loads a workflow.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/io/json.h"
#include "engine/io/redactor.h"
#include "engine/load/inputs.h"
#include "engine/load/loader.h"
#include "engine/model/diagnostics.h"
#include "engine/step_api/step_registry.h"

namespace CLI {
class App;
}

namespace flowrun {

class Journal;

// The exit codes of engine/io/run_state.h's exit_code_for, plus the CLI's own.
constexpr int kExitOk = 0, kExitFailed = 1, kExitUsage = 2, kExitSignal = 130;

// With --log-format json every line flowrun writes is a JSON object, errors too.
void set_json_output(bool on);

// An error of the CLI itself (not of a step), on stderr.
void print_error(const std::string& message);
void print_diagnostic(const Diagnostic& d, const std::string& source);

// Parses a command's arguments. Returns nothing to go on, or the exit code: 0 after --help, 2
// after a usage error (one line naming it, and where to look), never the parser's own codes.
std::optional<int> parse_args(CLI::App& app, int argc, char** argv);

// Registry with the built-ins plus the project's scripts/steps/*.lua. Script errors are
// reported as warnings but do not stop a workflow that does not use them.
void build_registry(StepRegistry& registry, const std::filesystem::path& root);

// Loads a workflow with the registry of its project, printing its diagnostics to stderr; the
// result holds a workflow only when there were none.
LoadResult load(const std::string& file, StepRegistry& registry);
// The same with a registry already built for the file's project (validate of many files).
LoadResult load_with(const std::string& file, const StepRegistry& registry);

// The run's inputs from the workflow and `--set name=value` arguments; nothing (the problems
// printed, each naming the file) when a name is unknown or a value is not of the input's type.
std::optional<Json> inputs_from_sets(const LoadResult& loaded, const std::vector<std::string>& sets,
                                     MissingRequired missing = MissingRequired::kError);

// A redactor knowing the workflow's secrets that are set, the targets of its `notify` channels
// resolved with `inputs` (null: none), and `extra` (targets a run stored earlier); nothing (the
// reason on stderr) when a secret's value is too short to redact. (An unset one is named by the
// step that uses it, when that step fails: a run that never needs it hears nothing of it.)
std::optional<Redactor> secrets_redactor(const Workflow& workflow, const Json& inputs = Json(),
                                         const std::vector<std::string>& extra = {});

// --state-dir, defaulting to $FLOWRUN_STATE_DIR or .flowrun.
void add_state_dir(CLI::App& app, std::string& state_dir);

// The journal in `state_dir`; null, with the reason on stderr, when it cannot be used.
std::unique_ptr<Journal> open_journal(const std::string& state_dir);

}  // namespace flowrun
