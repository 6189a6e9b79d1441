#!/usr/bin/env node
// An event-loop peer of the polling benchmark: COUNT monitors in one Node.js process (global
// fetch, whose pool keeps connections alive, and timers; no npm package), each on its own timer.
// Like flowrun's wait-for-marker url source, a monitor asks only for what is new
// (`Range: bytes=OFFSET-`), takes 206 and 416 as flowrun does, and stops at the marker's line.
//
// Usage: node node_monitor.js BASE_URL COUNT INTERVAL_SECONDS
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

async function watch(url, interval) {
  const m = { url, offset: 0, partial: Buffer.alloc(0) };
  for (;;) {
    try {
      if (await poll(m)) return true;
    } catch (e) {
      // a failed poll is retried at the next tick, as flowrun does
    }
    await sleep(interval * 1000);
  }
}

async function main() {
  const [base, count, interval] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
  const watches = [];
  for (let i = 0; i < count; i++) watches.push(watch(`${base}/log/${i}`, interval));
  const found = (await Promise.all(watches)).filter(Boolean).length;
  console.log(`${found} markers found`);
}

main();
