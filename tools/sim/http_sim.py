#!/usr/bin/env python3
"""A scriptable HTTP server for tests: loopback only, and it stops by itself.

Usage: http_sim.py SCRIPT.json [--log REQUESTS.jsonl] [--lifetime SECONDS]

SCRIPT maps "METHOD /path" (or "/path" for any method) to a list of responses, served in
order; the last one repeats. A response is {"status": 200, "headers": {...}, "json": ...}
or {"body": "text"} (or {"body_hex": "636166e9"}: bytes that need not be UTF-8, or
{"gzip_zeros": N}: N zero bytes gzip-compressed, sent with Content-Encoding: gzip), with an
optional "delay" in seconds and "drop": true to close the connection without answering.
Every request is appended to the log as one JSON line {"method", "path", "query", "headers",
"body"}. The first line on stdout is the port.
"""
import json
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from sim_common import command_line, serve


_gzip_cache = {}


def gzip_zeros(n):
    """N zero bytes as a gzip stream (a "gzip bomb": about 1000 to 1), compressed a MiB at a time."""
    if n not in _gzip_cache:
        packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
        chunk = bytes(1 << 20)
        parts = []
        left = n
        while left > 0:
            parts.append(packer.compress(chunk[:min(left, len(chunk))]))
            left -= min(left, len(chunk))
        parts.append(packer.flush())
        _gzip_cache[n] = b"".join(parts)
    return _gzip_cache[n]


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
            elif "gzip_zeros" in response:
                payload = gzip_zeros(response["gzip_zeros"])
                content_type = "application/octet-stream"
                response = dict(response, headers=dict(response.get("headers", {}), **{"Content-Encoding": "gzip"}))
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
