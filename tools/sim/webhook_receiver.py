#!/usr/bin/env python3
"""A webhook receiver for the notification tests: records every POST (its path, Idempotency-Key
and JSON body, and the status it answered) as one line of the --log JSONL file.

Scenario: {"fail_first": N, "status": 500} answers `status` to the first N POSTs, then 200.
GET /_sim/state gives {"requests": [...], "failing": N}; GET /_sim/fail?n=K makes the next K POSTs
fail (0: accept from now on). Bodies over 1 MiB are refused with 413.
"""
import json
import threading
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

from sim_common import command_line, serve

SCENARIO, LOG_PATH, LIFETIME = command_line()
LOCK = threading.Lock()
STATE = {"failing": int(SCENARIO.get("fail_first", 0)), "requests": []}
FAIL_STATUS = int(SCENARIO.get("status", 500))
MAX_BODY = 1 << 20


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlparse(self.path)
        with LOCK:
            if url.path == "/_sim/fail":
                STATE["failing"] = int(parse_qs(url.query).get("n", ["0"])[0])
                return self.answer(200, {"failing": STATE["failing"]})
            if url.path == "/_sim/state":
                return self.answer(200, STATE)
        self.answer(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        if length > MAX_BODY:
            return self.answer(413, {"error": "too large"})
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        with LOCK:
            status = 200
            if STATE["failing"] > 0:
                STATE["failing"] -= 1
                status = FAIL_STATUS
            entry = {"path": self.path, "idempotency_key": self.headers.get("Idempotency-Key", ""),
                     "content_type": self.headers.get("Content-Type", ""), "body": body, "status": status}
            STATE["requests"].append(entry)
            if LOG_PATH:
                with open(LOG_PATH, "a") as f:
                    f.write(json.dumps(entry) + "\n")
        self.answer(status, {"ok": status == 200})


if __name__ == "__main__":
    serve(Handler, LIFETIME)
