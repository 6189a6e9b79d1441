#!/usr/bin/env node
// An event-loop peer of the polling benchmark: COUNT monitors in one Node.js process (global
// fetch, whose pool keeps connections alive, and timers; no npm package), each on its own timer.
// Like flowrun's wait-for-marker url source, a monitor asks only for what is new
// (`Range: bytes=OFFSET-`), takes 206 and 416 as flowrun does, and stops at the marker's line.
//
// With `instance`, a monitor follows Vast.ai instance N at BASE_URL as flowrun's instance source
// does, with the same requests per poll in the same order: GET /api/v0/instances/N/?owner=me (its
// state), PUT /api/v0/instances/request_logs/N/ {"tail":"1000"}, 0.3 s, then GET of the
// result_url (no auth; tried again 0.3 s apart until it answers 200, 30 times at most); the new
// lines are those after the longest overlap of the snapshot's first lines with the last lines
// seen (the last TAIL lines are kept for that).
//
// Usage: node node_monitor.js BASE_URL COUNT INTERVAL_SECONDS [url|instance]
'use strict';
const { setTimeout: sleep } = require('timers/promises');

const MARKER = Buffer.from('VASTAI_PIPELINE_COMPLETED_SUCCESSFULLY');
const NEWLINE = 10;

// One poll; true once a complete line holds the marker.
async function poll(m) {
  const headers = { 'user-agent': 'node-monitor/1' };
  if (m.offset > 0) headers.range = `bytes=${m.offset}-`;
  const r = await fetch(m.url, { headers, signal: AbortSignal.timeout(60000) });
  let fresh = Buffer.from(await r.arrayBuffer());
  if (r.status === 404) return false; // not there yet
  if (r.status === 416) {
    // "bytes */SIZE": nothing past the offset; a SIZE below it means the log was cut.
    const size = Number((r.headers.get('content-range') || '').split('/')[1]);
    if (size < m.offset) restart(m);
    return false;
  }
  if (r.status !== 200 && r.status !== 206) throw new Error(`GET ${m.url}: ${r.status}`);
  if (r.status === 206) {
    const start = parseInt((r.headers.get('content-range') || '').slice(6), 10); // "bytes START-END/SIZE"
    if (start !== m.offset) {
      restart(m);
      return false;
    }
  } else if (m.offset > 0) {
    if (fresh.length < m.offset) restart(m);
    else fresh = fresh.subarray(m.offset);
  }
  m.offset += fresh.length;
  const text = m.partial.length ? Buffer.concat([m.partial, fresh]) : fresh;
  const end = text.lastIndexOf(NEWLINE) + 1; // complete lines only; the rest waits for its end
  m.partial = Buffer.from(text.subarray(end)); // a copy, so the poll's buffer is not kept
  return text.subarray(0, end).indexOf(MARKER) >= 0;
}

function restart(m) {
  m.offset = 0;
  m.partial = Buffer.alloc(0);
}

const TAIL = 1000;
const AUTH = { authorization: 'Bearer bench-key', accept: 'application/json', 'user-agent': 'node-monitor/1' };
const STOPPED = new Set(['exited', 'stopped', 'offline', 'unknown']);

async function json(r, what) {
  const text = await r.text();
  if (!r.ok) throw new Error(`${what}: ${r.status}`);
  return JSON.parse(text);
}

// One poll of an instance; true once a new line holds the marker or the instance is gone.
async function pollInstance(m) {
  const signal = AbortSignal.timeout(60000);
  const row = (await json(await fetch(`${m.base}/api/v0/instances/${m.id}/?owner=me`, { headers: AUTH, signal }),
    'show')).instances;
  if (!row) return true; // vanished: the wait ends
  const status = row.actual_status || 'loading';
  const dead = STOPPED.has(status);
  if (status !== 'running' && !dead) return false;
  const put = await fetch(`${m.base}/api/v0/instances/request_logs/${m.id}/`, {
    method: 'PUT', headers: { ...AUTH, 'content-type': 'application/json' },
    body: JSON.stringify({ tail: String(TAIL) }), signal });
  const url = (await json(put, 'request_logs')).result_url;
  let text;
  for (let i = 0; i < 30 && text === undefined; i++) {
    await sleep(300); // the upload has not happened yet
    const r = await fetch(url, { headers: { 'user-agent': 'node-monitor/1' }, signal: AbortSignal.timeout(60000) });
    const body = await r.text();
    if (r.status === 200) text = body;
  }
  if (text === undefined) throw new Error('logs not uploaded');
  const window = text.split('\n');
  if (!dead || window[window.length - 1] === '') window.pop(); // a last line without its newline waits
  // The largest k such that the last k lines seen are the window's first k lines.
  const seen = m.seen;
  let overlap = 0;
  for (let k = Math.min(window.length, seen.length); k > 0 && !overlap; k--) {
    if (window[k - 1] !== seen[seen.length - 1]) continue;
    let same = true;
    for (let j = 0; j < k && same; j++) same = window[j] === seen[seen.length - k + j];
    if (same) overlap = k;
  }
  const fresh = window.slice(overlap);
  m.seen = seen.concat(fresh).slice(-TAIL);
  return dead || fresh.some((line) => line.includes('VASTAI_PIPELINE_COMPLETED_SUCCESSFULLY'));
}

async function watch(url, interval, base, id) {
  const m = { url, offset: 0, partial: Buffer.alloc(0), base, id, seen: [] };
  for (;;) {
    try {
      if (await (base ? pollInstance(m) : poll(m))) return true;
    } catch (e) {
      // a failed poll is retried at the next tick, as flowrun does
    }
    await sleep(interval * 1000);
  }
}

async function main() {
  const [base, count, interval] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
  const instance = process.argv[5] === 'instance';
  const watches = [];
  for (let i = 0; i < count; i++) {
    watches.push(instance ? watch(null, interval, base, i) : watch(`${base}/log/${i}`, interval));
  }
  const found = (await Promise.all(watches)).filter(Boolean).length;
  console.log(`${found} markers found`);
}

main();
