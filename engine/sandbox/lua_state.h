#pragma once
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "engine/io/clock.h"
#include "engine/io/json.h"
#include "engine/io/step_error.h"

struct lua_State;
struct lua_Debug;

namespace flowrun {

struct LuaLimits {
  size_t memory_bytes = 64u << 20;
  uint64_t instructions = 200'000'000;
};

// An error raised inside Lua. `kind` is set when the script called flow.fail(msg, kind) or when
// a flow.* call failed with a StepError, so the step's retry policy sees the real kind. The
// sandbox's own error: the Lua step turns it into a StepError of that kind, the loader into a
// Diagnostic.
class LuaError : public std::runtime_error {
 public:
  LuaError(const std::string& message, ErrorKind kind, std::string traceback = {})
      : std::runtime_error(message), kind_(kind), traceback_(std::move(traceback)) {}
  ErrorKind kind() const { return kind_; }
  const std::string& traceback() const { return traceback_; }
  StepError to_step_error() const { return StepError(kind_, what()); }

 private:
  ErrorKind kind_;
  std::string traceback_;
};

// The address of this byte is the key (lua_rawsetp) of a metatable field holding a light pointer
// to the Json a lazily filled table stands for (expression scopes): to_json returns that Json.
inline constexpr char kLazyJsonKey = 0;

// What a lazily filled table stands for when it is no one Json but the merge of several objects,
// a key taken from the first that has it (an inner expression scope's `steps`: its own, then its
// outer scopes'). to_json merges them, within its byte limit, when asked.
class LazyJsonParts {
 public:
  virtual std::vector<const Json*> parts() const = 0;

 protected:
  ~LazyJsonParts() = default;
};
// The key of a metatable field holding a light pointer to a LazyJsonParts.
inline constexpr char kLazyJsonPartsKey = 0;

// LuaState::to_json stopped at its byte limit; the Lua step turns it into its max_output StepError.
class JsonTooLarge : public LuaError {
 public:
  explicit JsonTooLarge(const std::string& message) : LuaError(message, ErrorKind::kPermanent) {}
};

// One sandboxed Lua interpreter (RAII over lua_State). Only base, table, string, math and utf8
// are opened, and from base neither dofile, loadfile nor collectgarbage; `load` accepts text
// only; `os` offers time, clock, date and difftime. A custom allocator enforces the memory
// limit and a count hook the instruction limit, the cancel token and the deadline; once the
// hook has stopped a script it errors on every later hook too, so `pcall` cannot swallow it.
// Not thread-safe: one LuaState belongs to one thread at a time.
class LuaState {
 public:
  explicit LuaState(LuaLimits limits = {});
  ~LuaState();
  LuaState(const LuaState&) = delete;
  LuaState& operator=(const LuaState&) = delete;

  lua_State* get() { return L_; }

  // Every later hook checks these; both are borrowed and must outlive their use here.
  void set_interrupts(const CancelToken* cancel, Clock* clock, std::optional<TimePoint> deadline);

  // Loads a text chunk and pushes it as a function. Throws LuaError ("name:line: message").
  void load(std::string_view code, const std::string& chunk_name);
  // Calls the function below `nargs` arguments on the stack with a traceback handler, leaving
  // `nresults` values (LUA_MULTRET allowed). Throws LuaError; the stack is balanced either way.
  void protected_call(int nargs, int nresults);

  // Pushes a JSON value: objects and arrays become tables (arrays keep a marker so that an
  // empty one converts back to []), null becomes nil. Throws LuaError past 512 levels.
  void push_json(const Json& value);
  // Pushes what push_json(parse_json_limited(text)) would, parsed straight into Lua values (no
  // Json in between: a JSONL line is one parse, not a parse and a copy). Returns false, pushing
  // nothing, when the text is not JSON; throws StepError past kMaxJsonDepth levels.
  bool push_json_text(std::string_view text);
  // The same through nlohmann's SAX parser alone: push_json_text's path for huge or refused texts,
  // and the reference its tests compare against.
  bool push_json_text_nlohmann(std::string_view text);
  // Converts the value at `index`; strings and keys become valid UTF-8 (invalid bytes turn into
  // U+FFFD). Throws LuaError for functions, userdata, nesting deeper than 64 levels, or a result
  // over `max_bytes` of JSON text (default: the memory limit), counted as it is built: a table
  // holding one 8 MiB string 100 times stops at the limit instead of building 800 MB.
  Json to_json(int index, std::optional<size_t> max_bytes = std::nullopt);

  // Sets a global in the sandbox.
  void set_global(const char* name, const Json& value);

  size_t memory_used() const { return used_; }

  // Charges `work` instructions done in C (a pattern match, a table.move) and checks the
  // instruction limit, the cancel token and the deadline like the hook; when one is reached,
  // raises the kill error (a longjmp: call it only where no C++ object with a destructor lives).
  static void charge(lua_State* L, uint64_t work);
  // True once a limit, cancel or deadline has stopped the script.
  bool stopped() const { return !kill_reason_.empty(); }

 private:
  static void* allocate(void* self, void* ptr, size_t old_size, size_t new_size);
  static void hook(lua_State* L, ::lua_Debug* ar);
  void open_sandbox();
  Json to_json_at(int index, int depth);
  void spend_json_bytes(size_t n);
  // Sets kill_reason_ when a limit, the cancel token or the deadline is reached.
  void check_limits();
  void push_json_at(const Json& value, int depth);

  lua_State* L_ = nullptr;
  LuaLimits limits_;
  size_t used_ = 0;
  uint64_t instructions_ = 0;
  size_t json_budget_ = 0;  // bytes left for the to_json in progress
  size_t json_limit_ = 0;
  std::string kill_reason_;
  ErrorKind kill_kind_ = ErrorKind::kPermanent;
  const CancelToken* cancel_ = nullptr;
  Clock* clock_ = nullptr;
  std::optional<TimePoint> deadline_;
};

// The LuaState that owns `L` (stored in the state's extra space).
LuaState& lua_owner(lua_State* L);

// Pushes a flow error object {message, kind}: raise it with lua_error once no C++ object with a
// destructor is alive in the calling frame (lua_error longjmps).
void push_flow_error(lua_State* L, const std::string& message, ErrorKind kind);

}  // namespace flowrun
