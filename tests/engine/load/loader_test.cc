#include "engine/load/loader.h"

#include <catch2/catch.hpp>

#include "engine/load/inputs.h"
#include "steps/catalog.h"
#include "support/harness.h"

using namespace flowrun;
using flowrun::test::diagnostics_of;
using flowrun::test::Harness;

TEST_CASE("a valid workflow loads with its model", "[loader]") {
  Harness h;
  REQUIRE(h.load(R"(version: 1
name: ok
inputs:
  url: {default: "http://x"}
  n: 3
secrets: [TOKEN]
defaults:
  retry: {attempts: 5, on: [transient, "exit:3"], backoff: {initial: 5s, factor: 2, max: 60s, jitter: full}}
  timeout: 1h30m
steps:
  - id: a
    type: log
    with: {message: "${{ inputs.url }}"}
    attempt_timeout: 250ms
  - id: loop
    for_each: [1, 2]
    as: x
    concurrency: 2
    tolerate: {count: 1}
    steps:
      - {id: b, type: sleep, with: {duration: 1s}}
    finally:
      - {id: c, type: log, with: {message: "${{ steps.b.status }}"}}
finally:
  - {id: z, type: log, with: {message: bye}}
)") == "");
  const Workflow& wf = *h.loaded.workflow;
  CHECK(wf.name == "ok");
  REQUIRE(wf.inputs.size() == 2);
  CHECK(wf.inputs[1].default_value == Json(3));
  CHECK(wf.secrets == std::vector<std::string>{"TOKEN"});
  REQUIRE(wf.defaults.retry);
  CHECK(wf.defaults.retry->attempts == 5);
  CHECK(wf.defaults.retry->on == std::vector<RetryCondition>{RetryCondition::transient(), RetryCondition::exit(3)});
  CHECK(wf.defaults.retry->backoff.jitter == Jitter::kFull);
  CHECK(wf.defaults.timeout == Duration(std::chrono::minutes(90)));
  REQUIRE(wf.steps.size() == 2);
  CHECK(wf.steps[0].policies.attempt_timeout == Duration(250));
  CHECK(wf.steps[0].loc.line == 11);
  CHECK(wf.steps[1].kind == Step::Kind::kForEach);
  CHECK(wf.steps[1].concurrency == 2);
  CHECK(wf.steps[1].tolerate->count == 1);
  CHECK(wf.steps[1].finally.size() == 1);
  CHECK(wf.finally.size() == 1);
}

TEST_CASE("unknown key: line:col of the key and a suggestion", "[loader]") {
  auto d = diagnostics_of(R"(version: 1
steps:
  - id: a
    type: log
    retyr: 3
    with: {message: hi}
)");
  REQUIRE(d.size() == 1);
  CHECK(d[0] == "5:5: unknown key 'retyr' in step | did you mean 'retry'?");
}

TEST_CASE("unknown top-level key", "[loader]") {
  auto d = diagnostics_of("version: 1\nstep:\n  - {id: a, type: log, with: {message: hi}}\n");
  REQUIRE(d.size() == 2);
  CHECK(d[0] == "1:1: the workflow has no `steps` | add a `steps:` list");
  CHECK(d[1] == "2:1: unknown key 'step' in workflow | did you mean 'steps'?");
}

TEST_CASE("unknown step type names the type's position", "[loader]") {
  auto d = diagnostics_of("steps:\n  - id: a\n    type: exce\n    with: {argv: [ls]}\n");
  REQUIRE(d.size() == 1);
  CHECK(d[0] == "3:11: unknown step type 'exce' | did you mean 'exec'?");
}

TEST_CASE("duplicate step id", "[loader]") {
  auto d = diagnostics_of(R"(steps:
  - {id: a, type: log, with: {message: x}}
  - id: g
    steps:
      - {id: a, type: log, with: {message: y}}
)");
  REQUIRE(d.size() == 1);
  CHECK(d[0] == "5:14: duplicate step id 'a' | every step id must be unique in the workflow");
}

TEST_CASE("step id that is not an identifier", "[loader]") {
  auto d = diagnostics_of("steps:\n  - {id: my-step, type: log, with: {message: x}}\n");
  REQUIRE(d.size() == 1);
  CHECK(d[0].rfind("2:10: step id 'my-step' is not an identifier | use letters", 0) == 0);
}

TEST_CASE("bad duration such as 5x, in a policy and in a parameter", "[loader]") {
  auto d = diagnostics_of(R"(steps:
  - id: a
    type: sleep
    timeout: 5x
    with: {duration: 60}
)");
  REQUIRE(d.size() == 2);
  CHECK(d[0] == "4:14: bad duration '5x' for timeout | use a number with a unit: 250ms, 30s, 5m, 2h or 1h30m");
  CHECK(d[1] ==
        "5:22: bad duration '60' for parameter 'duration' | use a number with a unit: 250ms, 30s, 5m, 2h or 1h30m");
}

TEST_CASE("missing required input is reported at its declaration", "[loader]") {
  Harness h;
  REQUIRE(h.load("inputs:\n  bucket: {required: true}\nsteps:\n  - {id: a, type: log, with: {message: x}}\n") == "");
  Diagnostics d;
  resolve_inputs(*h.loaded.workflow, {}, d);
  REQUIRE(d.size() == 1);
  CHECK(d.items()[0].loc.line == 2);
  CHECK(d.items()[0].loc.col == 3);
  CHECK(d.items()[0].message == "required input 'bucket' has no value");
  CHECK(d.items()[0].hint == "pass it with --set bucket=VALUE");

  Diagnostics unknown;
  resolve_inputs(*h.loaded.workflow, {{"bucket", "b"}, {"buckte", "x"}}, unknown);
  REQUIRE(unknown.size() == 1);
  CHECK(unknown.items()[0].hint == "did you mean 'bucket'?");
}

TEST_CASE("set overrides take the type of the default", "[loader]") {
  Harness h;
  REQUIRE(h.load("inputs:\n  n: 3\n  ok: true\n  name: x\nsteps:\n  - {id: a, type: log, with: {message: x}}\n") == "");
  Diagnostics d;
  Json in = resolve_inputs(*h.loaded.workflow, {{"n", "7"}, {"ok", "false"}, {"name", "42"}}, d);
  CHECK(d.empty());
  CHECK(in["n"] == 7);
  CHECK(in["ok"] == false);
  CHECK(in["name"] == "42");
}

TEST_CASE("reference to an unknown step or input in an expression", "[loader]") {
  auto d = diagnostics_of(R"(inputs:
  url: x
steps:
  - id: fetch
    type: log
    with:
      message: "${{ steps.fecth.outputs.body }} ${{ inputs.ulr }}"
  - id: b
    type: log
    if: steps.nothere.status == 'succeeded'
    with: {message: "'steps.inside_a_string' is fine"}
)");
  REQUIRE(d.size() == 3);
  CHECK(d[0] == "7:16: expression refers to unknown step 'fecth' | did you mean 'fetch'?");
  CHECK(d[1] == "7:16: expression refers to undeclared input 'ulr' | did you mean 'url'?");
  CHECK(d[2].rfind("10:9: expression refers to unknown step 'nothere'", 0) == 0);
}

TEST_CASE("an expression that does not parse, and one left open", "[loader]") {
  auto d = diagnostics_of(R"(steps:
  - id: a
    type: log
    with: {message: "${{ 1 + }}"}
  - id: b
    type: log
    with: {message: "${{ 1 + 1"}
)");
  REQUIRE(d.size() == 2);
  CHECK(d[0] ==
        "4:21: expression `1 +` does not parse: unexpected symbol near ')' | expressions are Lua: use "
        "`and`, `or`, `not`, `==` and `~=`");
  CHECK(d[1] == "7:21: `${{` without a closing `}}` | close the expression with `}}`");
}

TEST_CASE("YAML syntax errors carry the parser's position", "[loader]") {
  auto d = diagnostics_of("steps:\n  - id: a\n    with: {message: [unclosed\n");
  REQUIRE(d.size() == 1);
  CHECK(d[0].rfind("YAML syntax", d[0].find(": ") + 2) != std::string::npos);
  CHECK(d[0].rfind("4:1:", 0) == 0);
}

TEST_CASE("parameters: unknown, missing and mistyped", "[loader]") {
  auto d = diagnostics_of(R"(steps:
  - id: a
    type: exec
    with:
      args: [ls]
      shell: maybe
)");
  REQUIRE(d.size() == 3);
  CHECK(d[0] == "5:7: unknown key 'args' in `with` of step 'a' (exec) | did you mean 'argv'?");
  CHECK(d[1].rfind("5:7: step 'a' (exec) needs parameter 'argv'", 0) == 0);
  CHECK(d[2] == "6:14: expected bool for parameter 'shell' | write true or false");
}

TEST_CASE("retry policies are checked", "[loader]") {
  auto d = diagnostics_of(R"(steps:
  - id: a
    type: log
    with: {message: x}
    retry: {attempts: 0, on: [sometimes], backoff: {jitter: lots, factor: 0.5}}
)");
  REQUIRE(d.size() == 4);
  CHECK(d[0] == "5:23: `attempts` must be a whole number of at least 1");
  CHECK(d[1] ==
        "5:31: unknown retry condition 'sometimes' | use transient, timeout, http_429, http_5xx, exit:N or any");
  CHECK(d[2] == "5:61: unknown jitter 'lots' | use none, full or equal");
  CHECK(d[3] == "5:75: `factor` must be a number of at least 1");
}

TEST_CASE("structure: for_each without steps, finally on a single step, no type", "[loader]") {
  auto d = diagnostics_of(R"(steps:
  - id: loop
    for_each: [1]
  - id: b
    type: log
    with: {message: x}
    finally: [{id: c, type: log, with: {message: y}}]
  - id: d
)");
  REQUIRE(d.size() == 3);
  CHECK(d[0] == "2:5: a `for_each` step needs `steps` to run for each item");
  CHECK(d[1].rfind("7:14: `finally` belongs to a group or a `for_each`", 0) == 0);
  CHECK(d[2].rfind("8:5: the step has no `type`", 0) == 0);
}

TEST_CASE("the whole message: file:line:col, the source line, a caret and the hint", "[loader]") {
  Harness h;
  std::string out = h.load("steps:\n  - id: a\n    type: log\n    wiht: {message: hi}\n");
  CHECK(out ==
        "test.yaml:2:5: error: step 'a' (log) needs parameter 'message'\n"
        "      - id: a\n"
        "        ^\n"
        "  hint: the text; ${{ }} expressions are interpolated\n"
        "test.yaml:4:5: error: unknown key 'wiht' in step\n"
        "        wiht: {message: hi}\n"
        "        ^\n"
        "  hint: did you mean 'with'?\n");
}

TEST_CASE("quoted scalars stay strings, plain ones get types", "[loader]") {
  Harness h;
  REQUIRE(h.load(R"(steps:
  - id: a
    type: set
    with: {n: 5, f: 1.5, s: "5", b: true, z: ~, t: text}
)") == "");
  const Json& with = h.loaded.workflow->steps[0].with;
  CHECK(with["n"] == 5);
  CHECK(with["f"] == 1.5);
  CHECK(with["s"] == "5");
  CHECK(with["b"] == true);
  CHECK(with["z"].is_null());
  CHECK(with["t"] == "text");
}

TEST_CASE("loader: schedule takes a period", "[loader][schedule]") {
  StepRegistry registry;
  register_builtin_steps(registry);
  LoadResult ok = load_workflow_text("schedule: {every: 5m}\nsteps:\n  - {id: a, type: log, with: {message: x}}\n",
                                     "w.yaml", registry, ".");
  REQUIRE(ok.workflow);
  CHECK(ok.workflow->schedule_every == Duration(std::chrono::minutes(5)));
  auto diags = flowrun::test::diagnostics_of(
      "schedule: {every: 5x, at: 3}\nsteps:\n  - {id: a, type: log, with: {message: x}}\n");
  REQUIRE(diags.size() == 2);
  CHECK(diags[0].find("1:19: bad duration '5x' for schedule.every") == 0);
  CHECK(diags[1].find("unknown key 'at'") != std::string::npos);
}

TEST_CASE("calls to unknown functions, with the closest known one", "[loader][functions]") {
  auto d = diagnostics_of(R"(steps:
  - id: a
    type: log
    if: always() and success() or failure() or cancelled()
    with:
      message: "${{ toJson(inputs) }} ${{ format('{0}', tostring(1)) }} ${{ string.upper('x') }} ${{ ('x'):rep(2) }}"
  - id: b
    type: log
    if: ${{ not(contains('ab', 'a')) and startsWith('a', 'a') and endsWith(type(1), 'r') }}
    with: {message: "${{ 'alwayss() is text' }} ${{ fromJSON('[1]')[1] }} ${{ select('#', 1, 2) }}"}
  - id: c
    type: log
    if: alwayss()
    with: {message: "${{ frobnicate(1) }}"}
)");
  REQUIRE(d.size() == 3);
  CHECK(d[0] == "6:16: expression calls unknown function 'toJson' | did you mean 'toJSON'?");
  CHECK(d[1] == "13:9: expression calls unknown function 'alwayss' | did you mean 'always'?");
  CHECK(d[2] ==
        "14:21: expression calls unknown function 'frobnicate' | expressions can call contains, startsWith, "
        "endsWith, format, toJSON, fromJSON, always, success, failure, cancelled and Lua's base functions "
        "(tostring, tonumber, type, pairs, ...)");
}

TEST_CASE("functions the sandbox removed are unknown", "[loader][functions]") {
  auto d = diagnostics_of(R"(steps:
  - {id: a, type: log, with: {message: "${{ dofile('x') }}"}}
)");
  REQUIRE(d.size() == 1);
  CHECK(d[0] ==
        "2:40: expression calls unknown function 'dofile' | expressions can call contains, startsWith, "
        "endsWith, format, toJSON, fromJSON, always, success, failure, cancelled and Lua's base functions "
        "(tostring, tonumber, type, pairs, ...)");
}

TEST_CASE("a step may not read a later step", "[loader][order]") {
  auto d = diagnostics_of(R"(steps:
  - id: b
    type: log
    with: {message: "${{ steps.c.outputs.x }}"}
  - id: c
    type: log
    if: steps.c.status == 'ok'
    with: {message: "${{ steps.b.status }}"}
)");
  REQUIRE(d.size() == 2);
  CHECK(d[0] ==
        "4:21: step 'b' refers to steps.c, which runs after it | a step reads the outputs of the steps "
        "before it; move 'c' earlier");
  CHECK(d[1] ==
        "7:9: step 'c' refers to its own outputs (steps.c), which are set only after it has run | read "
        "them in a later step");
}

TEST_CASE("a loop's steps are visible inside the loop and its finally, not after it", "[loader][order]") {
  auto d = diagnostics_of(R"(steps:
  - id: first
    type: log
    with: {message: x}
  - id: videos
    for_each: "${{ fromJSON(steps.first.outputs.text or '[]') }}"
    if: steps.gpu == nil
    steps:
      - {id: gpu, type: log, with: {message: "${{ steps.first.status }} ${{ steps.job.status }}"}}
      - {id: job, type: log, with: {message: "${{ steps.gpu.status }} ${{ steps.videos.status }}"}}
    finally:
      - {id: destroy, type: log, with: {message: "${{ steps.gpu.status }} ${{ steps.job.status }}"}}
  - id: report
    type: log
    with: {message: "${{ steps.videos.outputs.items }} ${{ steps.job.outputs }}"}
  - id: other
    for_each: [1]
    steps:
      - {id: peek, type: log, with: {message: "${{ steps.destroy.status }}"}}
finally:
  - {id: cleanup, type: log, with: {message: "${{ steps.job.status }} ${{ steps.peek.status }} ${{ steps.late.status }}"}}
  - {id: late, type: log, with: {message: "${{ run.status }}"}}
)");
  REQUIRE(d.size() == 5);
  CHECK(d[0] ==
        "7:9: step 'videos' refers to steps.gpu, which is not run before it (it is inside for_each "
        "'videos') | a loop's steps run once per item; after the loop read steps.videos.outputs.items");
  CHECK(d[1] ==
        "9:46: step 'gpu' refers to steps.job, which runs after it | a step reads the outputs of the "
        "steps before it; move 'job' earlier");
  CHECK(d[2] ==
        "10:46: step 'job' refers to steps.videos, which contains it and finishes after it | read "
        "steps.videos in a step after 'videos'");
  CHECK(d[3] ==
        "15:21: step 'report' refers to steps.job, which is not run before it (it is inside for_each "
        "'videos') | a loop's steps run once per item; after the loop read steps.videos.outputs.items");
  CHECK(d[4] ==
        "19:47: step 'peek' refers to steps.destroy, which is not run before it (it is inside for_each "
        "'videos') | a loop's steps run once per item; after the loop read steps.videos.outputs.items");
}

TEST_CASE("groups and nested lists: their steps run in order with the rest", "[loader][order]") {
  auto d = diagnostics_of(R"(inputs:
  url: http://x
steps:
  - id: before
    type: log
    with: {message: x}
  - id: group
    steps:
      - {id: inner, type: log, with: {message: "${{ steps.before.status }}"}}
    finally:
      - {id: inner_cleanup, type: log, with: {message: "${{ steps.inner.status }}"}}
  - id: watch
    type: stall-check
    with:
      probe: {http: {url: "${{ inputs.url }}"}}
      stalled: "processing == 0"
      done: "pending == 0"
    on_stall:
      - {id: fix, type: log, with: {message: "${{ steps.before.status }} ${{ steps.inner.status }} ${{ steps.check.status }}"}}
      - {id: check, type: log, with: {message: "${{ steps.fix.status }} ${{ steps.watch.status }} ${{ steps.after.status }}"}}
  - id: after
    type: log
    with: {message: "${{ steps.inner_cleanup.status }} ${{ steps.fix.status }} ${{ steps.watch.outputs }}"}
)");
  REQUIRE(d.size() == 3);  // `after` reads inner_cleanup, fix and watch freely
  CHECK(d[0] ==
        "19:46: step 'fix' refers to steps.check, which runs after it | a step reads the outputs of the "
        "steps before it; move 'check' earlier");
  CHECK(d[1] ==
        "20:48: step 'check' refers to steps.watch, which contains it and finishes after it | read "
        "steps.watch in a step after 'watch'");
  CHECK(d[2] ==
        "20:48: step 'check' refers to steps.after, which runs after it | a step reads the outputs of the "
        "steps before it; move 'after' earlier");
}

TEST_CASE("undeclared secrets", "[loader][secrets]") {
  auto d = diagnostics_of(R"(secrets: [API_TOKEN]
steps:
  - id: a
    type: log
    with: {message: "${{ secrets.API_TOKEN }} ${{ secrets.API_TOKNE }} ${{ secrets.OTHER }} ${{ 'secrets.X' }}"}
)");
  REQUIRE(d.size() == 2);
  CHECK(d[0] ==
        "5:21: expression refers to undeclared secret 'API_TOKNE' | did you mean 'API_TOKEN'? If not, add "
        "API_TOKNE to `secrets:` (it is read from the environment variable of that name)");
  CHECK(d[1] ==
        "5:21: expression refers to undeclared secret 'OTHER' | add OTHER to `secrets:` (it is read from "
        "the environment variable of that name)");
}

TEST_CASE("a loop variable may not hide a global", "[loader][loop]") {
  auto d = diagnostics_of(R"(steps:
  - id: a
    for_each: [1]
    as: os
    steps: [{id: x, type: log, with: {message: "${{ os }}"}}]
  - id: b
    for_each: [1]
    as: inputs
    steps: [{id: y, type: log, with: {message: hi}}]
  - id: c
    for_each: [1]
    as: toJSON
    steps: [{id: z, type: log, with: {message: hi}}]
  - id: d
    for_each: [1]
    as: video
    steps: [{id: w, type: log, with: {message: "${{ video }}"}}]
)");
  REQUIRE(d.size() == 3);
  CHECK(d[0] ==
        "4:9: loop variable 'os' hides the expression global 'os' | inside the loop `os` would be the item; "
        "choose another name, for example `as: os_item`");
  CHECK(d[1] ==
        "8:9: loop variable 'inputs' hides the expression global 'inputs' | inside the loop `inputs` would "
        "be the item; choose another name, for example `as: inputs_item`");
  CHECK(d[2] ==
        "12:9: loop variable 'toJSON' hides the expression global 'toJSON' | inside the loop `toJSON` would "
        "be the item; choose another name, for example `as: toJSON_item`");
}

TEST_CASE("env at workflow and step level", "[loader][env]") {
  Harness h;
  REQUIRE(h.load(R"(secrets: [TOKEN]
env:
  LOG_LEVEL: debug
  RETRIES: 3
  EMPTY:
steps:
  - id: a
    type: exec
    env: {TOKEN: "${{ secrets.TOKEN }}", QUIET: true}
    with: {argv: [env]}
)") == "");
  const Workflow& wf = *h.loaded.workflow;
  CHECK(wf.env == Json({{"LOG_LEVEL", "debug"}, {"RETRIES", 3}, {"EMPTY", ""}}));
  REQUIRE(wf.steps.size() == 1);
  CHECK(wf.steps[0].env == Json({{"TOKEN", "${{ secrets.TOKEN }}"}, {"QUIET", true}}));
  CHECK(wf.steps[0].with == Json({{"argv", {"env"}}}));
}

TEST_CASE("env: names are identifiers, values single, expressions checked", "[loader][env]") {
  auto d = diagnostics_of(R"(env:
  my-var: x
  LIST: [1, 2]
  FIRST: "${{ steps.a.outputs.x }}"
steps:
  - id: a
    type: log
    env: {OK: "${{ steps.b.status }}", MAP: {x: 1}}
    with: {message: hi}
  - id: b
    type: log
    env: "A=1"
    with: {message: hi}
)");
  REQUIRE(d.size() == 6);
  CHECK(d[0] ==
        "2:3: env name 'my-var' is not an identifier | use letters, digits and underscores (e.g. `my_var`), "
        "so `env.my_var` works in expressions");
  CHECK(d[1] ==
        "3:9: env value 'LIST' must be a single value, not a list | environment variables are text: quote "
        "it, or write `${{ toJSON(...) }}`");
  CHECK(d[2] ==
        "4:10: the workflow's `env` refers to steps.a, which runs after it | the workflow's `env` is "
        "evaluated before any step; use the step's own `env`");
  CHECK(d[3] ==
        "8:15: step 'a' refers to steps.b, which runs after it | a step reads the outputs of the steps "
        "before it; move 'b' earlier");
  CHECK(d[4] ==
        "8:45: env value 'MAP' must be a single value, not a mapping | environment variables are text: "
        "quote it, or write `${{ toJSON(...) }}`");
  CHECK(d[5] ==
        "12:10: `env` of step 'b' must be a mapping of names to values | for example `env: {LOG_LEVEL: "
        "debug, TOKEN: \"${{ secrets.TOKEN }}\"}`");
}

TEST_CASE("sql: transaction and create are checked as bool, like exec's shell", "[loader][params]") {
  auto sql = diagnostics_of(R"(steps:
  - id: s
    type: sql
    with:
      database: app.db
      statement: "SELECT 1"
      transaction: "yes please"
      create: 7
)");
  REQUIRE(sql.size() == 2);
  CHECK(sql[0] == "7:20: expected bool for parameter 'transaction' | write true or false");
  CHECK(sql[1] == "8:15: expected bool for parameter 'create' | write true or false");
  auto exec = diagnostics_of("steps:\n  - {id: e, type: exec, with: {argv: [ls], shell: \"yes please\"}}\n");
  REQUIRE(exec.size() == 1);
  CHECK(exec[0] == "2:51: expected bool for parameter 'shell' | write true or false");
}

TEST_CASE("input types: the parameter types --set can convert, nothing else", "[loader][params]") {
  auto d = diagnostics_of(R"(inputs:
  a: {type: any}
  b: {type: string|list}
  c: {type: boolean}
  d: {type: duration}
steps:
  - {id: s, type: log, with: {message: hi}}
)");
  REQUIRE(d.size() == 3);
  CHECK(d[0] == "2:13: unknown input type 'any' | use one of: string, number, integer, bool, list, map, duration");
  CHECK(d[1] ==
        "3:13: unknown input type 'string|list' | use one of: string, number, integer, bool, list, map, duration");
  CHECK(d[2] == "4:13: unknown input type 'boolean' | use one of: string, number, integer, bool, list, map, duration");
}
