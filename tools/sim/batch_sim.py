#!/usr/bin/env python3
"""An Anthropic Message Batches API simulator, for tests: loopback only, and it stops by itself.

Usage: batch_sim.py SCENARIO.json [--log REQUESTS.jsonl] [--lifetime SECONDS]

Shapes follow ../shared/API-SHAPES.md section 2 (the anthropic-sdk-python types): a MessageBatch
from GET /v1/messages/batches/{id}, its results as JSONL from results_url (absolute, as the
real API gives it), errors as {"type": "error", "error": {"type", "message"}, "request_id"}.

SCENARIO (every key optional but "batches"):
  api_key        the x-api-key the API requires (default "sk-test"); anthropic-version is required
  batches        {ID: {"ends_after": N, "results": [RESULT, ...], "generate": {"prefix": P,
                 "count": C}}}: the batch is in_progress for its first N retrieves (its
                 request_counts advancing by 1/(N+1) of the results each time), then ended.
                 RESULT is {"custom_id", "type": succeeded|errored|canceled|expired, "text"
                 (succeeded), "error" (errored)}. "generate" appends C succeeded results P0..P{C-1}
                 whose text is the JSON {"sentiment": S} with S = ((i % 201) - 100) / 100, and
                 every 97th errored ("overloaded")
  faults         [{"status": 429|500|529|..., "retry_after": S}, ...]: the first retrieves (of any
                 batch) answer these, in order, before any real answer
  line_delay     seconds between results lines (to kill a reader mid-stream)
  drop_after     {ID: N}: the first download of ID's results closes the connection after N lines

Also: GET /_sim/stats -> {"retrieves": {ID: n}, "downloads": {ID: n}, "lines_sent": {ID: n},
"faults_served": n}. The first line on stdout is the port.
"""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from sim_common import command_line, serve

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
               429: "rate_limit_error", 500: "api_error", 504: "timeout_error", 529: "overloaded_error"}


def result_line(r):
    kind = r.get("type", "succeeded")
    if kind == "succeeded":
        result = {"type": "succeeded", "message": {
            "id": "msg_" + r["custom_id"], "type": "message", "role": "assistant", "model": "claude-sim",
            "content": [{"type": "text", "text": r.get("text", "ok")}], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": {"input_tokens": 11, "output_tokens": 7}}}
    elif kind == "errored":
        result = {"type": "errored", "error": {"type": "error", "error": {
            "type": "invalid_request_error", "message": r.get("error", "bad request")}, "request_id": None}}
    else:
        result = {"type": kind}
    return json.dumps({"custom_id": r["custom_id"], "result": result}) + "\n"


def generated(spec):
    out = []
    for i in range(int(spec["count"])):
        cid = spec["prefix"] + str(i)
        if i % 97 == 96:
            out.append({"custom_id": cid, "type": "errored", "error": "overloaded"})
        else:
            out.append({"custom_id": cid, "type": "succeeded",
                        "text": json.dumps({"sentiment": ((i % 201) - 100) / 100})})
    return out


class State:
    def __init__(self, scenario):
        self.s = scenario
        for spec in scenario["batches"].values():
            if "generate" in spec:
                spec["results"] = spec.get("results", []) + generated(spec["generate"])
        # Encoded once: a 20,000-line download must not spend its time in json.dumps.
        self.lines = {bid: [result_line(r).encode() for r in spec.get("results", [])]
                      for bid, spec in scenario["batches"].items()}
        self.lock = threading.Lock()
        self.retrieves = {}
        self.downloads = {}
        self.lines_sent = {}
        self.faults = list(scenario.get("faults", []))
        self.faults_served = 0

    def batch(self, batch_id, base):
        spec = self.s["batches"][batch_id]
        n = self.retrieves.get(batch_id, 0)
        ended = n > int(spec.get("ends_after", 0))
        results = spec.get("results", [])
        # Before the end, the first n/(N+1) of the results count as processed.
        done = len(results) if ended else len(results) * n // (int(spec.get("ends_after", 0)) + 1)
        counts = {"processing": len(results) - done, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        for r in results[:done]:
            counts[r.get("type", "succeeded")] += 1
        return {"id": batch_id, "type": "message_batch",
                "processing_status": "ended" if ended else "in_progress", "request_counts": counts,
                "ended_at": "2026-11-23T10:00:00Z" if ended else None,
                "created_at": "2026-11-22T10:00:00Z", "expires_at": "2026-11-23T10:00:00Z",
                "archived_at": None, "cancel_initiated_at": None,
                "results_url": f"{base}/v1/messages/batches/{batch_id}/results" if ended else None}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None
    log_path = None

    def log_message(self, *a):
        pass

    def reply(self, status, payload, headers=None):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("request-id", "req_sim")
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def api_error(self, status, message, headers=None):
        self.reply(status, {"type": "error", "error": {"type": ERROR_TYPES.get(status, "api_error"),
                                                      "message": message}, "request_id": "req_sim"}, headers)

    def do_GET(self):
        st = self.state
        path = urlsplit(self.path).path.rstrip("/")
        if self.log_path:
            with st.lock, open(self.log_path, "a") as log:
                log.write(json.dumps({"method": "GET", "path": path, "headers": dict(self.headers)}) + "\n")
        if path == "/_sim/stats":
            with st.lock:
                return self.reply(200, {"retrieves": st.retrieves, "downloads": st.downloads,
                                        "lines_sent": st.lines_sent, "faults_served": st.faults_served})
        if self.headers.get("x-api-key") != st.s.get("api_key", "sk-test"):
            return self.api_error(401, "invalid x-api-key")
        if not self.headers.get("anthropic-version"):
            return self.api_error(400, "anthropic-version: header is required")
        parts = path.split("/")  # ['', 'v1', 'messages', 'batches', ID, ('results')]
        if len(parts) < 5 or parts[1:4] != ["v1", "messages", "batches"] or parts[4] not in st.s["batches"]:
            return self.api_error(404, "Not found")
        batch_id = parts[4]
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        if len(parts) == 5:
            with st.lock:
                if st.faults:
                    fault = st.faults.pop(0)
                    st.faults_served += 1
                    headers = {"retry-after": fault["retry_after"]} if "retry_after" in fault else {}
                    return self.api_error(int(fault["status"]), "simulated fault", headers)
                st.retrieves[batch_id] = st.retrieves.get(batch_id, 0) + 1
                return self.reply(200, st.batch(batch_id, base))
        if len(parts) == 6 and parts[5] == "results":
            return self.results(batch_id, base)
        return self.api_error(404, "Not found")

    def results(self, batch_id, base):
        st = self.state
        with st.lock:
            if st.batch(batch_id, base)["processing_status"] != "ended":
                return self.api_error(400, f"Batch {batch_id} has not ended")
            st.downloads[batch_id] = st.downloads.get(batch_id, 0) + 1
            first = st.downloads[batch_id] == 1
        lines = st.lines[batch_id]
        drop_after = st.s.get("drop_after", {}).get(batch_id) if first else None
        self.send_response(200)
        self.send_header("Content-Type", "application/binary")
        self.send_header("Content-Length", str(sum(len(line) for line in lines)))
        self.end_headers()
        delay = float(st.s.get("line_delay", 0))
        if not delay and drop_after is None:  # the whole file in large writes, as a real server would
            try:
                for i in range(0, len(lines), 500):
                    self.wfile.write(b"".join(lines[i:i + 500]))
                    with st.lock:
                        st.lines_sent[batch_id] = st.lines_sent.get(batch_id, 0) + len(lines[i:i + 500])
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            return
        for i, line in enumerate(lines):
            if drop_after is not None and i == drop_after:
                self.close_connection = True
                return  # the client sees fewer bytes than Content-Length promised
            try:
                self.wfile.write(line)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
                return  # the reader went away (a test killed it)
            with st.lock:
                st.lines_sent[batch_id] = st.lines_sent.get(batch_id, 0) + 1
            if delay:
                time.sleep(delay)


def main():
    scenario, Handler.log_path, lifetime = command_line()
    Handler.state = State(scenario)
    serve(Handler, lifetime)


if __name__ == "__main__":
    main()
