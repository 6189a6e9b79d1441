#!/usr/bin/env python3
"""A stateful Vast.ai API simulator for tests: loopback only, and it stops by itself.

Usage: vast_sim.py SCENARIO.json [--log REQUESTS.jsonl] [--lifetime SECONDS]

Request and response shapes follow the official client (vast-ai/vast-cli) and the Vast docs as
summarised in shared/API-SHAPES.md section 1: offer search (POST /api/v0/bundles/), create
(PUT /api/v0/asks/ID/), show (GET /api/v0/instances/ID/ -> {"instances": {...} | null}), list
(GET /api/v1/instances/?select_filters=...), logs (PUT /api/v0/instances/request_logs/ID/ ->
result_url, fetched without auth, 404 until "uploaded"), destroy (DELETE /api/v0/instances/ID/).
Auth is "Authorization: Bearer KEY" or ?api_key=KEY. Replies are exactly application/json.

SCENARIO (every key optional):
  api_key          the key to accept (default "test-key")
  offers           [{id, gpu_name, num_gpus, dph_total, reliability, disk_space}]
  vanished_offers  offer ids listed by search but gone on create (404 no_such_ask)
  loading_seconds  how long an instance stays "loading" (default 0.3)
  line_interval    seconds between two lines of a job's log (default 0.1)
  log_tail_max     the most lines a log request returns, whatever tail asks (default 1000)
  log_upload_misses  how many GETs of a result_url answer 404 before the log is there (default 1)
  jobs             {"substring of INPUT_VIDEO": {"behaviour": B, "after": SECONDS, "lines": N}}
                   B: ok (default), fail (a Traceback, no marker), hang (never the marker),
                   exit (actual_status "exited" after `after`), vanish (gone after `after`),
                   stuck_loading (never leaves "loading"), chatty (N progress lines, fast);
                   "times": N applies it to the first N instances of that input only;
                   "format": "seed" prints the log as the seed's real job does (below), with
                   "url": "upload" (default: "Uploading to B2... URL") or "bare" (the URL alone)
                   and "folder": the bucket folder of the result (default "output")
  log_format       "seed" for every job: progress lines ("progress: 35%"), a download URL
                   outside output/, the result URL, a log URL outside output/ after it, then the
                   marker; a failing job prints a Python traceback (all at once) ending
                   "RuntimeError: CUDA out of memory"
  faults           {"search"|"create"|"show"|"list"|"logs"|"destroy": [status, ...]}: the next
                   requests of that kind answer these statuses first (429 carries no
                   Retry-After, as on Vast, unless given as {"status": 429, "retry_after": S});
                   {"create_lost": N}: the first N creates make the
                   instance but answer 502 (a lost response); "reset": the connection is closed
                   before the request is handled; "malformed": the request is handled and the
                   reply is cut off mid-JSON (a proxy or a network dropping the end); "hang":
                   nothing is answered for hang_seconds (default 3), then the connection is
                   closed and the request was never handled
  delay            {"show": SECONDS, ...}: slow responses
  existing         [{"id", "gpu_name", "dph_total", "label", "log": [lines there from the start],
                   "later": [[SECONDS, line], ...], "status": [[SECONDS, status], ...]}]: instances
                   that exist when the simulator starts (a monitor attaches to them); a line or a
                   status applies from SECONDS after the start (status default "running")
GET /_sim/state returns {"created", "destroyed", "live", "vanished" (lists of ids), "create_calls"}.
"""
import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from sim_common import command_line, serve

MARKER = "VASTAI_PIPELINE_COMPLETED_SUCCESSFULLY"


def number(v, default=0.0):
    try:
        return float(v)
    except (TypeError, ValueError):
        return default


def op_matches(value, ops):
    """Vast filter operators; the CLI sends numbers as strings, so compare numerically when we can."""
    for op, want in ops.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            a, b = float(value), number(want, None)
            if b is None and op not in ("in", "notin"):
                return False
        else:
            a, b = value, want
        ok = {
            "eq": lambda: a == b, "neq": lambda: a != b, "gt": lambda: a > b, "gte": lambda: a >= b,
            "lt": lambda: a < b, "lte": lambda: a <= b,
            "in": lambda: value in want, "notin": lambda: value not in want,
        }.get(op, lambda: True)()
        if not ok:
            return False
    return True


class Sim:
    def __init__(self, scenario):
        self.s = scenario
        self.key = scenario.get("api_key", "test-key")
        self.lock = threading.Lock()
        self.instances = {}
        self.created, self.destroyed = [], []
        self.create_calls = 0
        self.seen = {}  # input key -> instances made for it
        self.next_id = 7000
        self.logs = {}  # token -> [misses_left, text]
        self.faults = {k: list(v) for k, v in scenario.get("faults", {}).items() if isinstance(v, list)}
        self.create_lost = scenario.get("faults", {}).get("create_lost", 0)
        for e in scenario.get("existing", []):
            iid = int(e["id"])
            self.instances[iid] = {
                "id": iid, "machine_id": iid, "actual_status": "running", "intended_status": "running",
                "cur_state": "running", "status_msg": None, "label": e.get("label"), "image_uuid": "vastai/base-image",
                "onstart": None, "extra_env": [], "extra_env_dict": {}, "gpu_name": e.get("gpu_name", "RTX 4090"),
                "num_gpus": 1, "dph_total": e.get("dph_total", 0.4), "start_date": time.time(), "end_date": None,
                "created_mono": time.monotonic(), "log": list(e.get("log", [])), "job": {"behaviour": "ok"},
                "script": e,
            }

    def pick_job(self, env, label):
        """The scenario's job for a new instance; "times": N limits it to the first N instances of that input."""
        name = env.get("INPUT_VIDEO", label or "")
        for key, job in self.s.get("jobs", {}).items():
            if key in name:
                self.seen[key] = self.seen.get(key, 0) + 1
                if "times" in job and self.seen[key] > job["times"]:
                    break
                return job
        return {"behaviour": "ok"}

    def job_for(self, inst):
        return inst["job"]

    def seed_lines(self, job, b, name, stem, start):
        """The seed's job: what a real Vast.ai video job prints (entries may hold several lines, printed at once)."""
        bucket = "https://s3.us-west-004.backblazeb2.com/noxfvr-videos"
        start = start + [f"Downloading {bucket}/input/{name.rsplit('/', 1)[-1]}"]
        progress = [f"progress: {p}%" for p in (10, 10, 35, 60)]
        if b == "fail":
            return start + progress[:2] + ["\n".join([
                "Traceback (most recent call last):",
                '  File "/workspace/process.py", line 88, in <module>',
                "    main()",
                '  File "/workspace/process.py", line 61, in main',
                "    frames = model(batch)",
                "RuntimeError: CUDA out of memory"])]
        if b in ("hang", "exit", "vanish"):
            return start + progress[:1]
        url = f"https://noxfvr-videos.s3.us-west-004.backblazeb2.com/{job.get('folder', 'output')}/{stem}_result.mp4"
        result = url if job.get("url") == "bare" else f"Uploading to B2... {url}"
        return start + progress + ["progress: 100%", result,
                                   f"log kept at https://noxfvr-videos.s3.us-west-004.backblazeb2.com/logs/{stem}.txt",
                                   MARKER]

    def job_lines(self, inst):
        job = self.job_for(inst)
        b = job.get("behaviour", "ok")
        name = inst["extra_env_dict"].get("INPUT_VIDEO", "input")
        stem = re.sub(r"\.[^./]*$", "", name.rsplit("/", 1)[-1])
        start = [f"starting job for {name} on instance {inst['id']}"]
        if job.get("format", self.s.get("log_format")) == "seed":
            return self.seed_lines(job, b, name, stem, start)
        if b == "fail":
            return start + ["frame 1/4", "Traceback (most recent call last):", "RuntimeError: CUDA out of memory"]
        if b in ("hang", "exit", "vanish"):
            return start + ["frame 1/4"]
        n = int(job.get("lines", 4)) if b == "chatty" else 4
        return start + [f"frame {i}/{n}" for i in range(1, n + 1)] + \
            [f"RESULT_URL=https://results.sim/{stem}.mp4", MARKER]

    def refresh(self, inst):
        """Advance an instance along its timeline (real time)."""
        if inst.get("vanished"):
            return
        if inst.get("script"):
            e, age = inst["script"], time.monotonic() - inst["created_mono"]
            inst["actual_status"] = "running"
            for at, status in e.get("status", []):
                if age >= at:
                    inst["actual_status"] = status
            inst["status_msg"] = "container exited with code 0" if inst["actual_status"] == "exited" else "running"
            inst["log"] = list(e.get("log", [])) + [line for at, line in e.get("later", []) if age >= at]
            return
        job = self.job_for(inst)
        b = job.get("behaviour", "ok")
        age = time.monotonic() - inst["created_mono"]
        loading = self.s.get("loading_seconds", 0.3)
        if b == "stuck_loading" or age < loading:
            inst["actual_status"] = "loading"
            inst["status_msg"] = "Loading image..."
            return
        run_age = age - loading
        if b == "vanish" and run_age >= job.get("after", 0.5):
            inst["vanished"] = True
            return
        if b == "exit" and run_age >= job.get("after", 0.5):
            inst["actual_status"] = "exited"
            inst["status_msg"] = "container exited with code 137"
        else:
            inst["actual_status"] = "running"
            inst["status_msg"] = "success, running " + inst["image_uuid"]
        interval = self.s.get("line_interval", 0.1) if b != "chatty" else 0.01
        lines = self.job_lines(inst)
        shown = min(len(lines), int(run_age / interval) + 1)
        inst["log"] = [line for entry in lines[:shown] for line in entry.split("\n")]

    def row(self, inst):
        public = {k: v for k, v in inst.items() if k not in ("log", "created_mono", "extra_env_dict", "vanished", "job")}
        return public

    def live(self, iid):
        inst = self.instances.get(iid)
        if inst is None or inst.get("destroyed"):
            return None
        self.refresh(inst)
        return None if inst.get("vanished") else inst


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    sim = None
    log_path = None

    def log_message(self, *a):
        pass

    def reply(self, status, payload, content_type="application/json", headers=None):
        body = (json.dumps(payload) if content_type == "application/json" else payload).encode()
        if getattr(self, "garble", False) and content_type == "application/json":
            body = body[: len(body) // 2]  # valid HTTP, JSON cut off in the middle
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        sim = self.sim
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        if self.log_path:
            with sim.lock, open(self.log_path, "a") as log:
                log.write(json.dumps({"method": self.command, "path": parts.path, "query": parts.query,
                                      "headers": dict(self.headers), "body": raw}) + "\n")
        path = parts.path.rstrip("/") + "/"
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return self.reply(400, {"error": "invalid_request", "msg": "Invalid json body"})

        if path == "/_sim/state/":
            with sim.lock:
                live = [i for i in sim.instances if sim.live(i)]
                vanished = [i for i, inst in sim.instances.items() if inst.get("vanished")]
                return self.reply(200, {"created": sim.created, "destroyed": sim.destroyed, "live": live,
                                        "vanished": vanished, "create_calls": sim.create_calls})
        m = re.fullmatch(r"/logs/([0-9a-f]+)\.log/", path)
        if m and self.command == "GET":  # the S3 upload: no auth
            with sim.lock:
                entry = sim.logs.get(m.group(1))
                if entry is None:
                    return self.reply(404, "<Error><Code>NoSuchKey</Code></Error>", "application/xml")
                if entry[0] > 0:
                    entry[0] -= 1
                    return self.reply(404, "<Error><Code>NoSuchKey</Code></Error>", "application/xml")
                return self.reply(200, entry[1], "text/plain")

        auth = self.headers.get("Authorization", "")
        if auth != f"Bearer {sim.key}" and query.get("api_key") != sim.key:
            return self.reply(401, {"success": False, "error": "auth_error", "msg": "Invalid user key"})

        kind = self.kind_of(path)
        if kind is None:
            return self.reply(404, {"success": False, "error": "not_found", "msg": f"no route {self.command} {path}"})
        delay = sim.s.get("delay", {}).get(kind)
        if delay:
            time.sleep(delay)
        with sim.lock:
            queue = sim.faults.get(kind)
            status = queue.pop(0) if queue else None
        retry_after = None
        if isinstance(status, dict):  # {"status": 429, "retry_after": 2}: a Retry-After Vast does not send today
            status, retry_after = status.get("status"), status.get("retry_after")
        if status == "hang":
            time.sleep(number(sim.s.get("hang_seconds"), 3))
            status = "reset"
        if status == "reset":
            self.close_connection = True
            return  # nothing written: the client sees an empty reply
        self.garble = status == "malformed"
        if self.garble:
            status = None
        if status == 429:
            return self.reply(429, "API requests too frequent endpoint threshold=4.5", "text/plain",
                              {"Retry-After": str(retry_after)} if retry_after is not None else None)
        if status:
            return self.reply(status, {"success": False, "error": "server_error", "msg": f"simulated {status}"})
        with sim.lock:
            return getattr(self, "do_" + kind)(path, query, body)

    def kind_of(self, path):
        c = self.command
        if c == "POST" and path == "/api/v0/bundles/":
            return "search"
        if c == "PUT" and re.fullmatch(r"/api/v0/asks/\d+/", path):
            return "create"
        if c == "GET" and re.fullmatch(r"/api/v0/instances/\d+/", path):
            return "show"
        if c == "GET" and path == "/api/v1/instances/":
            return "list"
        if c == "PUT" and re.fullmatch(r"/api/v0/instances/request_logs/\d+/", path):
            return "logs"
        if c == "DELETE" and re.fullmatch(r"/api/v0/instances/\d+/", path):
            return "destroy"
        return None

    def do_search(self, path, query, q):
        offers = []
        for o in self.sim.s.get("offers", []):
            ok = all(op_matches(o.get(k, True if k in ("verified", "rentable") else False if k in ("external", "rented") else None), ops)
                     for k, ops in q.items() if isinstance(ops, dict))
            if ok:
                offers.append(dict(o, ask_contract_id=o["id"], bundle_id=o["id"]))
        for col, direction in reversed(q.get("order", [])):
            offers.sort(key=lambda o: number(o.get(col)), reverse=direction == "desc")
        return self.reply(200, {"offers": offers[: int(q.get("limit", 64))]})

    def do_create(self, path, query, body):
        sim = self.sim
        sim.create_calls += 1
        offer_id = int(path.strip("/").split("/")[-1])
        offer = next((o for o in sim.s.get("offers", []) if o["id"] == offer_id), None)
        if offer is None or offer_id in sim.s.get("vanished_offers", []):
            status = 410 if body.get("cancel_unavail") else 404
            return self.reply(status, {"success": False, "error": "no_such_ask", "ask_id": offer_id,
                                       "msg": f"error 404/3603: no_such_ask Instance type by id {offer_id} is not available."})
        label, image = body.get("label") or "", body.get("image")
        if not isinstance(image, str) or not image or len(image) > 1024 or len(label) > 256 or \
                number(body.get("disk"), 0) < 8 or len(body.get("onstart") or "") > 4096:
            return self.reply(400, {"success": False, "error": "invalid_args", "msg": "invalid create arguments", "ask_id": offer_id})
        env = body.get("env") or {}
        if isinstance(env, str):  # the docs' docker-flag string form
            env = dict(re.findall(r"-e\s+([^=\s]+)=(\S*)", env))
        iid = sim.next_id
        sim.next_id += 1
        sim.instances[iid] = {
            "id": iid, "machine_id": offer.get("machine_id", offer_id), "actual_status": None,
            "intended_status": "running", "cur_state": "running", "status_msg": None, "label": label or None,
            "image_uuid": image, "onstart": body.get("onstart"), "extra_env": [[k, v] for k, v in env.items()],
            "extra_env_dict": env, "gpu_name": offer.get("gpu_name"), "num_gpus": offer.get("num_gpus", 1),
            "dph_total": offer.get("dph_total"), "start_date": time.time(), "end_date": None,
            "created_mono": time.monotonic(), "log": [], "job": sim.pick_job(env, label),
        }
        sim.created.append(iid)
        if sim.create_lost > 0:
            sim.create_lost -= 1
            return self.reply(502, {"success": False, "error": "bad_gateway", "msg": "simulated lost response"})
        return self.reply(200, {"success": True, "new_contract": iid})

    def do_show(self, path, query, body):
        inst = self.sim.live(int(path.strip("/").split("/")[-1]))
        return self.reply(200, {"instances": self.sim.row(inst) if inst else None})

    def do_list(self, path, query, body):
        sim = self.sim
        filters = json.loads(query.get("select_filters", "{}"))
        rows = []
        for iid in sorted(sim.instances):
            inst = sim.live(iid)
            if inst and all(op_matches(inst.get(k), ops) for k, ops in filters.items()):
                rows.append(sim.row(inst))
        limit = min(int(query.get("limit", 25)), 25)
        start = int(query.get("after_token", 0) or 0)
        page = rows[start:start + limit]
        more = start + limit < len(rows)
        return self.reply(200, {"success": True, "instances_found": len(page), "total_instances": len(rows),
                                "next_token": str(start + limit) if more else None, "instances": page})

    def do_logs(self, path, query, body):
        sim = self.sim
        inst = sim.live(int(path.strip("/").split("/")[-1]))
        if inst is None:
            return self.reply(404, {"error": "invalid_id", "msg": "Invalid instance id."})
        tail = min(int(body.get("tail", "1000")), int(sim.s.get("log_tail_max", 1000)))
        text = "".join(line + "\n" for line in inst["log"][-tail:]) if tail > 0 else ""
        token = uuid.uuid4().hex
        sim.logs[token] = [int(sim.s.get("log_upload_misses", 1)), text]
        host = self.headers.get("Host")
        return self.reply(200, {"success": True, "result_url": f"http://{host}/logs/{token}.log",
                                "msg": "Logs will be uploaded shortly"})

    def do_destroy(self, path, query, body):
        sim = self.sim
        iid = int(path.strip("/").split("/")[-1])
        inst = sim.instances.get(iid)
        if inst is None or inst.get("destroyed") or inst.get("vanished"):
            return self.reply(404, {"success": False, "error": "not_found", "msg": "Instance not found"})
        inst["destroyed"] = True
        sim.destroyed.append(iid)
        return self.reply(200, {"success": True})

    do_GET = do_POST = do_PUT = do_DELETE = handle_any


def main():
    scenario, Handler.log_path, lifetime = command_line()
    Handler.sim = Sim(scenario)
    serve(Handler, lifetime)


if __name__ == "__main__":
    main()
