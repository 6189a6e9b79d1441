#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/io/json.h"
#include "engine/io/json_text.h"  // interpolation_text, the text form of an interpolated value

namespace flowrun {

// One `${{ code }}` inside a text: where it starts and ends in the text, and its code.
struct ExpressionSpan {
  size_t begin = 0;  // offset of "${{"
  size_t end = 0;    // offset just past "}}"
  std::string code;  // trimmed
};

// Finds every `${{ ... }}` in `text`. An opening without a closing is reported through
// `unterminated` (set to its offset) and ends the scan.
std::vector<ExpressionSpan> find_expressions(std::string_view text, std::optional<size_t>* unterminated = nullptr);

// True when the whole text (ignoring surrounding blanks) is a single expression, so its value
// keeps its type instead of being turned into text.
bool is_single_expression(std::string_view text);

// A Lua syntax error in `code` used as an expression, or nullopt when it compiles.
std::optional<std::string> expression_syntax_error(std::string_view code);

// Raised when an expression fails to evaluate; the message names the expression. The sandbox's
// own error: its callers convert it, to a Diagnostic at load (inputs) and to a failed step or a
// StepError at run time (the executor, the supervise steps).
class ExpressionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Evaluates Lua expressions in a fresh sandbox whose globals are the keys of `scope` (inputs,
// steps, env, run, the loop variable, or a probe's fields) and the expression functions of
// expression_functions.h (contains, startsWith, endsWith, format, toJSON, fromJSON, and the
// status functions always, success, failure and cancelled, which read `run.status`: "running" or
// "succeeded" -> success(), "failed" -> failure(), "cancelled" -> cancelled()). Cheap enough to build per step: the
// scope becomes Lua values only as expressions use it. A scope passed as an lvalue is borrowed
// (it must outlive the evaluator and not change meanwhile: the executor's scope, which grows with
// every step, is never copied); a temporary is moved in and owned. `steps` is filled in per
// entry, so iterating it with pairs() sees only the entries used so far.
class ExpressionEvaluator {
 public:
  explicit ExpressionEvaluator(const Json& scope);
  explicit ExpressionEvaluator(Json&& scope);
  ~ExpressionEvaluator();
  ExpressionEvaluator(const ExpressionEvaluator&) = delete;
  ExpressionEvaluator& operator=(const ExpressionEvaluator&) = delete;

  // The value of one expression (without the ${{ }}).
  Json evaluate(std::string_view code);
  // Lua truthiness of an expression: everything but nil and false is true.
  bool condition(std::string_view code);
  // Strings holding ${{ }} are evaluated: a single expression keeps its type, otherwise each
  // expression is interpolated as text. Arrays and objects are resolved element by element.
  Json resolve(const Json& value);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The names an expression may call as a plain `name(...)`: the sandbox's global Lua functions
// (tostring, type, pairs, select, ...) and the expression functions (contains, toJSON, always, ...;
// see expression_functions.h).
const std::vector<std::string>& expression_callable_names();

// Every global an expression sees besides its scope: the callable names above and the library
// tables (string, math, table, utf8, os) and values (_G, _VERSION) of the sandbox.
const std::vector<std::string>& expression_builtin_names();

// Scopes nest: a for_each item's scope holds only its own entries (its `steps`, its item and
// `loop`) and reaches everything else (inputs, env, run, secrets, earlier steps) through a link
// to its for_each's scope, so that 10,000 items do not each copy them. An expression reads a
// name, and steps.X, from the nearest scope that has it. `outer` must outlive `inner` and every
// copy of it, unchanged meanwhile.
void link_outer_scope(Json& inner, const Json& outer);
void link_outer_scope(Json& inner, const Json&& outer) = delete;  // a temporary would not outlive it
// The scope `scope` is linked to, if any.
const Json* outer_scope(const Json& scope);
// The entry `key` of the nearest of `scope` and its outer scopes that has one, or null.
const Json* find_in_scope(const Json& scope, std::string_view key);
// The entry `key` of `scope` itself, to change: first copied from the nearest outer scope that
// has it (or made null) when `scope` has none, so that what an item's steps change (an `env:`
// block, run.status after a failure) stays the item's.
Json& own_in_scope(Json& scope, std::string_view key);

// Whether a value counts as true in a condition (Lua rules: only null and false are false).
bool is_truthy(const Json& value);

}  // namespace flowrun
