#!/usr/bin/env python3
"""Log server for the polling benchmark: loopback only, stops by itself or on SIGTERM.

Usage: log_server.py PORT_FILE MARKER_AFTER_SECONDS [LIFETIME [WORKERS]]

GET /log/N is instance N's log: one 100-byte line every 0.1 s since the server started; once
MARKER_AFTER_SECONDS have passed the log ends with the marker line and grows no more.
`Range: bytes=START-` is honoured (206, or 416 with `bytes */SIZE` when nothing is new), as
static file servers and object stores do. Connections are kept alive (`Keep-Alive: timeout=60`).

The same logs as Vast.ai instances, for the instance source (the calls flowrun's vastai provider
makes, shapes as in shared/API-SHAPES.md; any Bearer key is taken): GET /api/v0/instances/N/
answers instance N "running"; PUT /api/v0/instances/request_logs/N/ with {"tail": "T"} answers a
result_url, /tail/N/T, whose GET (no auth) is the log's last T lines at that moment, uploaded at
once (Vast takes a moment; the client's 0.3 s wait before fetching it is not the server's cost).
A poll is one GET of /log/N or of /api/v0/instances/N/: the report's `polls` per client.

It must not be what a benchmark measures, even at 10,000 monitors (10,000 keep-alive connections,
1,000 requests a second): WORKERS processes (default: one per core, at most 4), each one asyncio
loop on its own listening socket, share the port through SO_REUSEPORT, so the kernel spreads the
connections over them. When it stops, the first process prints one JSON line on stdout: requests, polls
and body bytes sent per client (the User-Agent's first word), summed over the workers, each
worker's CPU seconds and peak open connections, and the busiest worker's busiest second (CPU
seconds per second, sampled each second). GET /_stats answers for the worker that takes it.
"""
import asyncio
import json
import os
import signal
import socket
import sys
import time

START = time.monotonic()  # CLOCK_MONOTONIC: the same clock in every forked worker
MARKER_AFTER = float(sys.argv[2])
LINE = 100
LINES = 20000  # 2 MB, 2,000 s
ALL = memoryview(b"".join(f"frame {i:08d} {'x' * (LINE - 16)}\n".encode() for i in range(LINES)))
MARKER = b"VASTAI_PIPELINE_COMPLETED_SUCCESSFULLY\n"
REASONS = {200: "OK", 206: "Partial Content", 400: "Bad Request", 404: "Not Found", 416: "Range Not Satisfiable"}
STATS = {}
OPEN = [0, 0]  # open connections now, at most


def log_at(now):
    """(lines' bytes, whether the marker follows them): every instance prints the same lines, so
    a request is a slice of one prepared buffer."""
    t = now - START
    ended = t >= MARKER_AFTER
    return min(int((MARKER_AFTER if ended else t) * 10), LINES) * LINE, ended


class Connection(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""
        OPEN[0] += 1
        OPEN[1] = max(OPEN[1], OPEN[0])

    def connection_lost(self, exc):
        OPEN[0] -= 1

    def data_received(self, data):
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > 65536:
                    self.transport.close()
                return
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:  # a PUT's body (request_logs) comes after the head
                if line[:15].lower() == "content-length:":
                    length = int(line[15:].strip() or 0) if line[15:].strip().isdigit() else -1
            if length < 0 or length > 65536:
                self.transport.close()
                return
            if len(self.buffer) < end + 4 + length:
                return
            body, self.buffer = self.buffer[end + 4:end + 4 + length], self.buffer[end + 4 + length:]
            if not self.answer(head, body):
                self.transport.close()
                return

    def send(self, status, parts, agent, headers=(), keep=True, kind="text/plain", poll=False):
        size = sum(len(p) for p in parts)
        lines = [f"HTTP/1.1 {status} {REASONS[status]}", f"Content-Length: {size}", f"Content-Type: {kind}",
                 "Keep-Alive: timeout=60" if keep else "Connection: close", *headers, "", ""]
        self.transport.write("\r\n".join(lines).encode())
        for p in parts:
            if p:
                self.transport.write(p)
        s = STATS.setdefault(agent, {"requests": 0, "bytes": 0, "polls": 0})
        s["requests"] += 1
        s["bytes"] += size
        s["polls"] += poll

    def answer(self, head, body=b""):
        """Answers one request; False when the connection is to be closed."""
        lines = head.split("\r\n")
        try:
            method, path, version = lines[0].split(" ")
        except ValueError:
            return False
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        connection = headers.get("connection", "").lower()
        keep = connection != "close" and (version == "HTTP/1.1" or connection == "keep-alive")
        agent = (headers.get("user-agent") or "?").split("/")[0].split(" ")[0]
        if path == "/_stats":
            self.send(200, [json.dumps({"worker": os.getpid(), "clients": STATS}).encode()], agent, keep=keep)
            return keep
        if path.startswith("/api/v0/instances/"):
            self.vast(method, path.partition("?")[0][18:].strip("/").split("/"), headers, body, agent, keep)
            return keep
        if path.startswith("/tail/"):
            n, _, tail = path[6:].partition("/")
            if not tail.isdigit():
                self.send(404, [], agent, keep=keep)
                return keep
            lines_end, ended = log_at(time.monotonic())
            # The last `tail` lines, the marker being one of them once it is there.
            start = max(lines_end - (int(tail) - ended) * LINE, 0) if int(tail) > 0 else lines_end
            self.send(200, [ALL[start:lines_end], MARKER if ended and int(tail) > 0 else b""], agent, keep=keep)
            return keep
        if not path.startswith("/log/"):
            self.send(404, [], agent, keep=keep)
            return keep
        lines_end, ended = log_at(time.monotonic())
        size = lines_end + (len(MARKER) if ended else 0)
        start, rng = 0, headers.get("range", "")
        ranged = rng.startswith("bytes=") and rng.endswith("-") and rng[6:-1].isdigit()
        if ranged:
            start = int(rng[6:-1])
            if start >= size:
                self.send(416, [], agent, [f"Content-Range: bytes */{size}"], keep)
                return keep
        parts = [ALL[start:lines_end], MARKER[max(start - lines_end, 0):] if ended else b""]
        extra = [f"Content-Range: bytes {start}-{size - 1}/{size}"] if ranged else []
        self.send(206 if ranged else 200, parts, agent, extra, keep, poll=True)
        return keep

    def vast(self, method, parts, headers, body, agent, keep):
        """The Vast.ai calls of the instance source: show (a poll) and request_logs."""
        if method == "GET" and len(parts) == 1 and parts[0].isdigit():
            row = (f'{{"instances": {{"id": {parts[0]}, "actual_status": "running", "status_msg": "", "label": "", '
                   f'"gpu_name": "RTX 4090", "dph_total": 0.4}}}}')
            self.send(200, [row.encode()], agent, keep=keep, kind="application/json", poll=True)
        elif method == "PUT" and len(parts) == 2 and parts[0] == "request_logs" and parts[1].isdigit():
            try:
                tail = int(json.loads(body or b"{}").get("tail", 1000))
            except (ValueError, AttributeError):
                self.send(400, [b'{"error": "invalid_request"}'], agent, keep=keep, kind="application/json")
                return
            url = f"http://{headers.get('host', '127.0.0.1')}/tail/{parts[1]}/{min(max(tail, 0), 1000)}"
            reply = f'{{"success": true, "result_url": "{url}", "msg": "Logs will be uploaded shortly"}}'
            self.send(200, [reply.encode()], agent, keep=keep, kind="application/json")
        else:
            self.send(404, [b'{"error": "invalid_id"}'], agent, keep=keep, kind="application/json")


def worker(sock, lifetime, report):
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    loop = asyncio.new_event_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    loop.call_later(lifetime, lambda: stop.done() or stop.set_result(None))

    async def serve():
        server = await loop.create_server(Connection, sock=sock, backlog=4096)
        await stop
        server.close()

    loop.run_until_complete(serve())
    os.write(report, json.dumps({"clients": STATS, "peak_connections": OPEN[1]}).encode())
    os._exit(0)


def main():
    lifetime = float(sys.argv[3]) if len(sys.argv) > 3 else 600
    count = int(sys.argv[4]) if len(sys.argv) > 4 else min(os.cpu_count() or 1, 4)
    socks, port = [], 0
    for _ in range(count):  # every socket listens before the port is told, so no connection is refused
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(("127.0.0.1", port))
        s.listen(4096)  # a burst of 10,000 first polls must not overflow it
        s.setblocking(False)
        port = s.getsockname()[1]
        socks.append(s)
    # Blocked before the fork so a SIGTERM that comes early is not lost; workers unblock them.
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM, signal.SIGINT])
    workers = []
    for i, s in enumerate(socks):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            for other in socks:
                if other is not s:
                    other.close()
            worker(s, lifetime, w)
        os.close(w)
        workers.append((pid, r))
    for s in socks:
        s.close()
    with open(sys.argv[1], "w") as f:
        f.write(str(port))
    # Each worker's CPU time sampled every second: the busiest second shows a burst the run's
    # average would hide (the first polls of 10,000 monitors arrive at once).
    tick, last, busiest = os.sysconf("SC_CLK_TCK"), {}, 0.0
    deadline = time.monotonic() + lifetime + 1
    while time.monotonic() < deadline:
        if signal.sigtimedwait([signal.SIGTERM, signal.SIGINT], 1.0) is not None:
            break
        now = time.monotonic()
        for pid, _ in workers:
            try:
                fields = open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()
            except OSError:
                continue
            used = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
            if pid in last:
                busiest = max(busiest, (used - last[pid][0]) / (now - last[pid][1]))
            last[pid] = (used, now)
    clients, cpu, peaks = {}, [], []
    for pid, r in workers:
        os.kill(pid, signal.SIGTERM)
        _, _, usage = os.wait4(pid, 0)
        cpu.append(round(usage.ru_utime + usage.ru_stime, 3))
        report = b""
        while chunk := os.read(r, 65536):
            report += chunk
        data = json.loads(report or b"{}")
        peaks.append(data.get("peak_connections", 0))
        for agent, s in data.get("clients", {}).items():
            total = clients.setdefault(agent, {"requests": 0, "bytes": 0, "polls": 0})
            for key in total:
                total[key] += s.get(key, 0)
    print(json.dumps({"clients": clients, "worker_cpu_s": cpu, "busiest_second": round(busiest, 3),
                      "peak_connections": peaks,
                      "wall_s": round(time.monotonic() - START, 3)}), flush=True)


if __name__ == "__main__":
    main()
