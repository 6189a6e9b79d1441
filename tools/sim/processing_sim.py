#!/usr/bin/env python3
"""A processing API simulator (an image-reprocessing pipeline with a worker that stalls), for
tests: loopback only, and it stops by itself.

Usage: processing_sim.py SCENARIO.json [--log REQUESTS.jsonl] [--lifetime SECONDS]

The worker runs in real time: while healthy and there is pending work it keeps `in_flight`
images processing and completes `rate` images per second. When `completed` reaches the next
value of `stall_at`, it stalls (processing 0, pending unchanged) until restarted.

SCENARIO (every key optional):
  total 200, pending 60 (queued at the start; the rest is backlog for POST .../batch),
  rate 40, in_flight 4, stall_at [], restart_helps true (false: restarts never help),
  down [[FROM, TO], ...] (seconds since start when the status endpoint answers 503),
  token (a Bearer token the API requires)

Endpoints:
  GET  /api/processing/status        {"pending", "processing", "completed", "failed", "total"}
  POST /api/processing/batch?limit=N moves up to N backlog images to pending: {"queued", "pending"}
  POST /_sim/restart                 the worker restarts (what `docker compose restart worker` does)
  GET  /_sim/events                  what happened, in order: status answers (with "stalled"),
                                     restarts and batches, each with "t" (seconds since start)
"""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from sim_common import command_line, serve


class Pipeline:
    def __init__(self, s):
        self.s = s
        self.total = int(s.get("total", 200))
        self.pending = int(s.get("pending", 60))
        self.backlog = self.total - self.pending
        self.completed = 0
        self.failed = 0
        self.stall_at = sorted(s.get("stall_at", []))
        self.stalled = False
        self.carry = 0.0
        self.start = self.last = time.monotonic()
        self.events = []
        self.lock = threading.Lock()

    def now(self):
        return round(time.monotonic() - self.start, 3)

    def advance(self):
        t = time.monotonic()
        dt, self.last = t - self.last, t
        if self.stalled or self.pending == 0:
            return
        self.carry += dt * float(self.s.get("rate", 40))
        n = min(int(self.carry), self.pending)
        self.carry -= int(self.carry)
        if self.stall_at and self.completed + n >= self.stall_at[0]:
            n = max(0, self.stall_at[0] - self.completed)
            self.stalled = True
        self.completed += n
        self.pending -= n

    def processing(self):
        return 0 if self.stalled else min(int(self.s.get("in_flight", 4)), self.pending)

    def status(self):
        return {"pending": self.pending, "processing": self.processing(), "completed": self.completed,
                "failed": self.failed, "total": self.total}

    def restart(self):
        self.events.append({"t": self.now(), "event": "restart"})
        if self.stalled and self.s.get("restart_helps", True):
            self.stalled = False
            self.stall_at.pop(0)
            self.last = time.monotonic()

    def batch(self, limit):
        n = min(limit, self.backlog)
        self.backlog -= n
        self.pending += n
        self.events.append({"t": self.now(), "event": "batch", "queued": n})
        return {"queued": n, "pending": self.pending}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    pipeline = None
    log_path = None

    def log_message(self, *a):
        pass

    def reply(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        p = self.pipeline
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        with p.lock:
            if self.log_path:
                with open(self.log_path, "a") as log:
                    log.write(json.dumps({"method": self.command, "path": parts.path, "query": parts.query,
                                          "headers": dict(self.headers), "body": raw}) + "\n")
            p.advance()
            route = (self.command, parts.path.rstrip("/"))
            if route == ("POST", "/_sim/restart"):
                p.restart()
                return self.reply(200, {"restarted": True})
            if route == ("GET", "/_sim/events"):
                return self.reply(200, p.events)
            token = p.s.get("token")
            if token and self.headers.get("Authorization") != f"Bearer {token}":
                return self.reply(401, {"detail": "Not authenticated"})
            if route == ("GET", "/api/processing/status"):
                t = p.now()
                if any(a <= t < b for a, b in p.s.get("down", [])):
                    p.events.append({"t": t, "event": "down"})
                    return self.reply(503, {"detail": "Service Unavailable"})
                status = p.status()
                p.events.append(dict(status, t=t, event="status", stalled=p.stalled))
                return self.reply(200, status)
            if route == ("POST", "/api/processing/batch"):
                try:
                    limit = int(query.get("limit", "10000"))
                except ValueError:
                    return self.reply(422, {"detail": "limit must be an integer"})
                return self.reply(200, p.batch(limit))
            return self.reply(404, {"detail": "Not Found"})

    do_GET = do_POST = handle_any


def main():
    scenario, Handler.log_path, lifetime = command_line()
    Handler.pipeline = Pipeline(scenario)
    serve(Handler, lifetime)


if __name__ == "__main__":
    main()
