#include "engine/serve/page.h"

namespace flowrun {
namespace {

// Everything from the API is put in the page through textContent and setAttribute, never as
// markup; links only for http(s), file and s3 URLs.
const char* const kPage = R"PAGE(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="flowrun-csrf" content="@CSRF@">
<title>flowrun</title>
<style nonce="@NONCE@">
:root { --fg:#1d2330; --muted:#6b7385; --line:#e3e6ec; --bg:#f7f8fa; --ok:#1a7f37; --bad:#cf222e;
        --run:#0969da; --warn:#9a6700; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color:var(--fg); background:var(--bg); }
header { padding:10px 20px; background:#1d2330; color:#fff; display:flex; gap:16px; align-items:baseline; }
header h1 { font-size:16px; margin:0; }
header a { color:#fff; text-decoration:none; }
#updated { color:#aab; font-size:12px; margin-left:auto; }
main { display:grid; grid-template-columns: 340px 1fr; gap:16px; padding:16px 20px; }
section { background:#fff; border:1px solid var(--line); border-radius:6px; padding:12px 14px; margin-bottom:16px; }
h2 { font-size:14px; margin:0 0 8px; }
table { border-collapse:collapse; width:100%; }
th, td { text-align:left; padding:4px 6px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-weight:600; color:var(--muted); font-size:12px; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
tr.clickable { cursor:pointer; }
tr.clickable:hover, tr.selected { background:#eef4ff; }
.status { font-weight:600; }
.status-succeeded, .status-partial { color:var(--ok); }
.status-failed { color:var(--bad); }
.status-running { color:var(--run); }
.status-cancelled, .status-detached, .status-pending { color:var(--warn); }
.muted { color:var(--muted); }
.mono { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size:12px; }
.last-line { max-width:360px; overflow:hidden; text-overflow:ellipsis; white-space:nowrap; }
progress { width:110px; height:12px; vertical-align:middle; }
.totals { display:flex; gap:18px; margin:4px 0 10px; }
.totals span b { font-size:18px; display:block; }
#log { background:#11151c; color:#d8dee9; padding:10px; border-radius:4px; max-height:360px; overflow:auto;
       white-space:pre-wrap; word-break:break-all; margin:0; }
button { font:inherit; padding:4px 12px; border-radius:4px; border:1px solid var(--bad); background:#fff; color:var(--bad); cursor:pointer; }
button:disabled { opacity:.5; cursor:default; }
#run-error { color:var(--bad); white-space:pre-wrap; }
.runs-list td { font-size:13px; }
</style>
</head>
<body>
<header><h1><a href="/">flowrun</a></h1><span id="where" class="muted"></span><span id="updated"></span></header>
<main>
  <div>
    <section><h2>Recent runs</h2>
      <table class="runs-list"><thead><tr><th>run</th><th>status</th><th class="num">duration</th><th class="num">cost</th></tr></thead>
      <tbody id="runs"></tbody></table>
      <p id="runs-empty" class="muted" hidden>No runs in this journal yet.</p>
    </section>
  </div>
  <div id="detail">
    <section id="run-none"><p class="muted">Select a run.</p></section>
    <section id="run" hidden>
      <h2><span id="run-workflow"></span> <span id="run-id" class="mono muted"></span></h2>
      <p><span id="run-status" class="status"></span> · <span id="run-duration"></span> · cost <span id="run-cost"></span>
         <button id="cancel" type="button" hidden>Cancel run</button> <span id="cancel-status" class="muted"></span></p>
      <p id="run-error"></p>
    </section>
    <div id="foreach"></div>
    <section id="log-section" hidden><h2>Log of <span id="log-path" class="mono"></span></h2><pre id="log"></pre></section>
    <section id="steps-section" hidden><h2>Steps</h2>
      <table><thead><tr><th>step</th><th>status</th><th class="num">attempts</th><th class="num">duration</th><th>error / outputs</th></tr></thead>
      <tbody id="steps"></tbody></table>
    </section>
    <section id="events-section" hidden><h2>Events</h2>
      <table><tbody id="events"></tbody></table>
    </section>
  </div>
</main>
<script nonce="@NONCE@">
"use strict";
const csrf = document.querySelector('meta[name="flowrun-csrf"]').getAttribute("content");
const match = location.pathname.match(/^\/runs\/([A-Za-z0-9._-]+)$/);
const selected = match ? match[1] : null;
let logPath = null;
let runStatus = null;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) e.setAttribute(k, String(v));
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c === null || c === undefined ? "" : String(c)));
  return e;
}
function text(id, value) { document.getElementById(id).textContent = value === null || value === undefined ? "" : String(value); }
function duration(ms) {
  if (ms === null || ms === undefined) return "";
  let s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60); s = s % 60;
  return h ? h + "h " + m + "m" : m ? m + "m " + s + "s" : s + "s";
}
function money(c) { return typeof c === "number" ? "$" + (c < 1 ? c.toFixed(4) : c.toFixed(2)) : ""; }
function statusCell(s) { return el("td", {class: "status status-" + s}, s); }
function safeUrl(u) { return typeof u === "string" && /^(https?|file|s3):\/\//i.test(u) ? u : null; }
function short(v, n) { const t = typeof v === "string" ? v : JSON.stringify(v); return t && t.length > n ? t.slice(0, n) + "…" : t; }
async function getJson(url) {
  const r = await fetch(url, {credentials: "same-origin", cache: "no-store"});
  if (!r.ok) throw new Error(url + ": " + r.status);
  return r.json();
}

function renderRuns(data) {
  const body = document.getElementById("runs");
  body.replaceChildren();
  for (const run of data.runs || []) {
    const link = el("a", {href: "/runs/" + encodeURIComponent(run.id)}, run.workflow);
    const tr = el("tr", {"data-run": run.id, "data-status": run.status, class: run.id === selected ? "selected" : null},
      el("td", {}, link, el("div", {class: "mono muted"}, run.id)), statusCell(run.status),
      el("td", {class: "num"}, duration(run.duration_ms)), el("td", {class: "num"}, money(run.cost)));
    body.append(tr);
  }
  document.getElementById("runs-empty").hidden = (data.runs || []).length > 0;
}

function renderForEach(view) {
  const box = document.getElementById("foreach");
  box.replaceChildren();
  (view.for_each || []).forEach((fe, n) => {
    const t = fe.totals || {};
    const totals = el("div", {class: "totals", id: n === 0 ? "totals" : "totals-" + n, "data-totals-for": fe.path},
      el("span", {"data-items": t.items}, el("b", {}, t.items), "items"),
      el("span", {"data-running": t.running}, el("b", {}, t.running), "running"),
      el("span", {"data-done": t.succeeded}, el("b", {}, t.succeeded), "done"),
      el("span", {"data-failed": t.failed}, el("b", {}, t.failed), "failed"),
      el("span", {"data-pending": t.pending}, el("b", {}, t.pending), "pending"),
      el("span", {"data-cost": t.cost}, el("b", {}, money(t.cost)), "cost"));
    const body = el("tbody", {});
    for (const item of fe.items || []) {
      const progress = typeof item.progress === "number" ? Math.max(0, Math.min(100, item.progress)) : null;
      const url = safeUrl(item.result_url);
      const result = url ? el("a", {href: url, rel: "noopener noreferrer", target: "_blank", class: "result-url"}, short(url, 60))
                         : (item.result_url ? short(item.result_url, 60) : "");
      const tr = el("tr", {"data-item": item.index, "data-path": item.path, "data-status": item.status,
                           "data-progress": progress === null ? null : Math.round(progress),
                           class: "clickable" + (item.path === logPath ? " selected" : "")},
        el("td", {class: "num"}, item.index), el("td", {class: "mono"}, short(item.item, 48)), statusCell(item.status),
        el("td", {}, progress === null ? "" : el("progress", {max: 100, value: progress}), " ",
           el("span", {class: "muted"}, item.progress_text || (progress === null ? "" : Math.round(progress) + "%"))),
        el("td", {class: "num"}, duration(item.elapsed_ms)), el("td", {class: "num"}, money(item.cost)),
        el("td", {}, result), el("td", {class: "mono last-line", title: item.last_line || ""}, item.last_line || ""));
      tr.addEventListener("click", () => { logPath = item.path; showLog(); refresh(); });
      body.append(tr);
    }
    box.append(el("section", {"data-foreach": fe.path}, el("h2", {}, "for_each ", el("span", {class: "mono"}, fe.path)), totals,
      el("table", {}, el("thead", {}, el("tr", {}, ...["#", "item", "status", "progress", "elapsed", "cost", "result", "last line"]
        .map((h, i) => el("th", {class: i === 0 || i === 4 || i === 5 ? "num" : null}, h)))), body)));
  });
}

function renderSteps(view) {
  const body = document.getElementById("steps");
  body.replaceChildren();
  for (const s of view.steps || []) {
    const depth = (s.path.match(/\./g) || []).length;
    const name = el("td", {class: "mono"}, s.path);
    name.style.paddingLeft = (6 + depth * 16) + "px";
    const detail = s.error ? el("span", {class: "status-failed"}, (s.error_kind ? s.error_kind + ": " : "") + s.error)
                           : el("span", {class: "mono muted"}, s.outputs && Object.keys(s.outputs).length ? short(s.outputs, 160) : "");
    body.append(el("tr", {"data-step": s.path, "data-status": s.status}, name, statusCell(s.status),
      el("td", {class: "num"}, s.attempts), el("td", {class: "num"}, duration(s.duration_ms)), el("td", {}, detail)));
  }
  document.getElementById("steps-section").hidden = !(view.steps || []).length;
  const events = document.getElementById("events");
  events.replaceChildren();
  for (const e of (view.events || []).slice(-30).reverse())
    events.append(el("tr", {"data-event": e.kind}, el("td", {class: "muted"}, new Date(e.at_ms).toLocaleTimeString()),
      el("td", {class: "mono"}, e.path), el("td", {}, e.kind), el("td", {}, e.message)));
  document.getElementById("events-section").hidden = !(view.events || []).length;
}

function renderRun(view) {
  const run = view.run;
  runStatus = run.status;
  document.getElementById("run-none").hidden = true;
  document.getElementById("run").hidden = false;
  text("run-workflow", run.workflow); text("run-id", run.id);
  const status = document.getElementById("run-status");
  status.textContent = run.status; status.className = "status status-" + run.status;
  status.setAttribute("data-status", run.status);
  text("run-duration", duration(run.duration_ms)); text("run-cost", money(run.cost)); text("run-error", run.error);
  document.getElementById("cancel").hidden = !(run.status === "running" || run.status === "detached");
  renderForEach(view);
  renderSteps(view);
}

async function showLog() {
  if (!selected || !logPath) return;
  try {
    const data = await getJson("/api/runs/" + encodeURIComponent(selected) + "/log?path=" + encodeURIComponent(logPath));
    document.getElementById("log-section").hidden = false;
    text("log-path", logPath);
    const lines = Array.isArray(data) ? data : data.lines || [];
    text("log", lines.length ? lines.join("\n") : "(no log lines recorded)");
  } catch (e) { text("log", String(e)); }
}

async function refresh() {
  try {
    renderRuns(await getJson("/api/runs"));
    if (selected) renderRun(await getJson("/api/runs/" + encodeURIComponent(selected)));
    text("updated", "updated " + new Date().toLocaleTimeString());
  } catch (e) { text("updated", "cannot reach flowrun serve: " + e.message); }
}

document.getElementById("cancel").addEventListener("click", async () => {
  const button = document.getElementById("cancel");
  button.disabled = true;
  try {
    const r = await fetch("/api/runs/" + encodeURIComponent(selected) + "/cancel",
                          {method: "POST", credentials: "same-origin", headers: {"X-Flowrun-Csrf": csrf}});
    const data = await r.json().catch(() => ({}));
    text("cancel-status", r.ok ? "cancel " + (data.cancel || "requested") : "cancel refused: " + (data.error || r.status));
  } catch (e) { text("cancel-status", String(e)); }
  refresh();
});

text("where", selected ? "run " + selected : "recent runs");
refresh().then(showLog);
setInterval(() => { refresh(); showLog(); }, 2000);
</script>
</body>
</html>
)PAGE";

void replace_all(std::string& text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
}

}  // namespace

std::string live_view_page(const std::string& nonce, const std::string& csrf) {
  std::string page = kPage;
  replace_all(page, "@NONCE@", nonce);
  replace_all(page, "@CSRF@", csrf);
  return page;
}

}  // namespace flowrun
