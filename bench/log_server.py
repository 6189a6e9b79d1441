#!/usr/bin/env python3
"""Log server for the polling benchmark: loopback only, stops by itself.

Usage: log_server.py PORT_FILE MARKER_AFTER_SECONDS [LIFETIME]

GET /log/N is instance N's log: one 100-byte line every 0.1 s since the server started, and the
marker line once MARKER_AFTER_SECONDS have passed. `Range: bytes=START-` is honoured (206, or
416 when nothing is new), as static file servers and object stores do. GET /_stats gives
requests and body bytes sent, per client (the User-Agent's first word).
"""
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

START = time.monotonic()
MARKER_AFTER = float(sys.argv[2])
STATS = {}
LOCK = threading.Lock()


LINE = 100
ALL = b"".join(f"frame {i:08d} {'x' * (LINE - 16)}\n".encode() for i in range(20000))  # 2 MB, 2000 s


def log_text(n):
    """Every instance prints the same lines; slicing a prepared buffer keeps the server cheap."""
    t = time.monotonic() - START
    body = ALL[:min(int(t * 10), 20000) * LINE]
    if t >= MARKER_AFTER:
        body += b"VASTAI_PIPELINE_COMPLETED_SUCCESSFULLY\n"
    return body


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        who = (self.headers.get("User-Agent") or "?").split("/")[0].split(" ")[0]
        with LOCK:
            s = STATS.setdefault(who, {"requests": 0, "bytes": 0})
            s["requests"] += 1
            s["bytes"] += len(body)

    def do_GET(self):
        if self.path == "/_stats":
            import json
            with LOCK:
                body = json.dumps(STATS).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        n = int(self.path.rsplit("/", 1)[-1])
        body = log_text(n)
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= len(body):
                return self.send(416, b"", [("Content-Range", f"bytes */{len(body)}")])
            return self.send(206, body[start:], [("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")])
        self.send(200, body)


class Server(ThreadingHTTPServer):
    # The listen backlog is set in the constructor, so it must be a class attribute: with the
    # default of 5, a burst of 1,000 connections overflowed it and some requests hung for a
    # minute (the kernel dropping the handshake's last ACK while the client sent its request).
    request_queue_size = 4096
    daemon_threads = True


def main():
    server = Server(("127.0.0.1", 0), Handler)
    with open(sys.argv[1], "w") as f:
        f.write(str(server.server_address[1]))
    threading.Timer(float(sys.argv[3]) if len(sys.argv) > 3 else 600, server.shutdown).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
