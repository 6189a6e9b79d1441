#!/usr/bin/env python3
"""A scriptable HTTP server for tests: loopback only, and it stops by itself.

Usage: http_sim.py SCRIPT.json [--log REQUESTS.jsonl] [--lifetime SECONDS]

SCRIPT maps "METHOD /path" (or "/path" for any method) to a list of responses, served in
order; the last one repeats. A response is {"status": 200, "headers": {...}, "json": ...}
or {"body": "text"} (or {"body_hex": "636166e9"}: bytes that need not be UTF-8), with an
optional "delay" in seconds and "drop": true to close the connection without answering.
Every request is appended to the log as one JSON line {"method", "path", "query", "headers",
"body"}. The first line on stdout is the port.
"""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from sim_common import command_line, serve


def main():
    script, log_path, lifetime = command_line()
    served = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def handle_any(self):
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
            with lock:
                if log_path:
                    with open(log_path, "a") as log:
                        log.write(json.dumps({"method": self.command, "path": parts.path, "query": parts.query,
                                              "headers": dict(self.headers), "body": body}) + "\n")
                key = f"{self.command} {parts.path}"
                if key not in script:
                    key = parts.path
                responses = script.get(key)
                if not responses:
                    response = {"status": 404, "json": {"error": "not found", "path": parts.path}}
                else:
                    n = served.get(key, 0)
                    served[key] = n + 1
                    response = responses[min(n, len(responses) - 1)]
            if response.get("delay"):
                time.sleep(response["delay"])
            if response.get("drop"):
                self.close_connection = True
                return
            if "json" in response:
                payload = json.dumps(response["json"]).encode()
                content_type = "application/json"
            elif "body_hex" in response:
                payload = bytes.fromhex(response["body_hex"])
                content_type = "text/plain"
            else:
                payload = response.get("body", "").encode()
                content_type = "text/plain"
            self.send_response(response.get("status", 200))
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for k, v in response.get("headers", {}).items():
                self.send_header(k, str(v))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any

    serve(Handler, lifetime)


if __name__ == "__main__":
    main()
