#!/usr/bin/env python3
"""flowrun's benchmarks, each against the peer people use today, measured in the same run.

Usage: bench/run [--quick] [--only NAME[,NAME]] [--flowrun build/flowrun]
Names: steps, validate, polling (polling-url and polling-instance: one source), scan, ingest.
Prints one table; figures are medians of several runs.

  steps     1,000 trivial steps: flowrun (journal on, and --dry-run without it) against
            ansible-playbook running 1,000 set_fact tasks locally; per-step time is
            (t(1000) - t(1)) / 999, so start-up is not counted as per-step cost.
  validate  `flowrun validate` of the shipped workflows against `ansible-playbook --syntax-check`.
  polling   1,000, 4,000 and 10,000 concurrent wait-for-marker monitors (url source; --quick: 1,000
            and 4,000) on a local log server (bench/log_server.py: one asyncio process per core sharing
            the port; every log grows by a 100-byte line every 0.1 s and ends with the marker after
            60 s, 25 s with --quick), each polling every 10 s on its own timer, against event-loop
            peers that re-fetch with `Range: bytes=N-` as flowrun does: Node.js (bench/node_monitor.js,
            global fetch + timers) and Python asyncio + aiohttp (bench/aiohttp_monitor.py), one process
            for all monitors each; and, at 1,000 without --quick, a Python monitor with a thread per
            instance re-fetching the whole log (bench/python_monitor.py). One run of each on a fresh
            server: peak RSS, CPU seconds per 1,000 polls, the RSS slope in KiB per monitor between
            sizes and the ratios against the best event-loop peer; below the table, each run's polls,
            bytes per poll and the log server's CPU (it must not be the bottleneck).
            Then the same for the instance source ("instance" rows): monitor N follows Vast.ai
            instance N through the vastai provider pointed at the same server ($VAST_URL, a dummy
            key), which answers the Vast calls for the same logs; a poll is three requests (the
            instance's state, request_logs with tail 1000, the result_url after 0.3 s), and the
            peers make the same ones in the same order and find the new lines as flowrun does
            (after the longest overlap with the last lines seen); marker after 60 s, 15 s with --quick.
  scan      the marker at the end of a 1 GiB log (256 MiB with --quick) of ffmpeg-like lines: flowrun
            following the file against `rg -F -m1` (and `grep -F -m1`); then flowrun with the shipped
            video_batch's patterns (capture, progress, fail_on) against `rg -c` counting the lines
            that match the same alternation. Page cache warm for all.
  ingest    20,000 Message Batches results (4 ended batches of 5,000, JSONL from tools/sim/batch_sim.py)
            stored in SQLite by the shipped workflows/batch_results.yaml (store_batch_results, chunks
            of 1,000 rows) against a Python peer (bench/python_ingest.py: urllib, json, sqlite3
            `executemany`, the same upsert SQL in the same chunked transactions) on identical copies
            of the same database (on /dev/shm when it exists, so the disk's fsyncs are not what is
            measured): rows per second of the whole run, start-up included.
"""
import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
ROWS = []


def run_measured(argv, env=None, cwd=None, check=True):
    """Runs argv to completion; returns (wall seconds, peak RSS MiB, CPU seconds, stdout), and its exit
    code when not `check` (which ends the benchmark when it is not 0)."""
    start = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.monotonic() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0 and check:
        sys.exit(f"bench: {' '.join(argv[:3])}... exited {code}:\n{out.decode(errors='replace')[-2000:]}")
    result = (wall, usage.ru_maxrss / 1024.0, usage.ru_utime + usage.ru_stime, out.decode(errors="replace"))
    return result if check else (*result, code)


def median_wall(argv, runs, **kw):
    return statistics.median(run_measured(argv, **kw)[0] for _ in range(runs))


def row(name, flowrun, peer_name, peer, unit, better="lower"):
    ratio = float("nan")
    if flowrun and peer and better != "none":
        ratio = peer / flowrun if better == "lower" else flowrun / peer
    ROWS.append((name, flowrun, peer_name, peer, unit, ratio))


def fmt(v):
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def bench_steps(flowrun, tmp, quick):
    def workflow(n, step="type: set, with: {{v: {i}}}", name="steps"):
        path = os.path.join(tmp, f"{name}{n}.yaml")
        with open(path, "w") as f:
            f.write(f"name: {name}\nsteps:\n")
            for i in range(n):
                f.write(f"  - {{id: s{i}, " + step.format(i=i) + "}\n")
        return path

    # A step with side effects records its start and its end, each committed at once; `sleep`
    # for 0 s is the cheapest such step, so its cost over `set` is that of two commits.
    def sleeps(n):
        return workflow(n, "type: sleep, with: {{duration: 0s}}", "sleeps")

    def playbook(n):
        path = os.path.join(tmp, f"play{n}.yml")
        with open(path, "w") as f:
            f.write("- hosts: localhost\n  gather_facts: false\n  tasks:\n")
            for i in range(n):
                f.write(f"    - ansible.builtin.set_fact: {{v{i}: {i}}}\n")
        return path

    runs = 3 if quick else 5
    state = os.path.join(tmp, "state")
    fr = {n: median_wall([flowrun, workflow(n), "-q", "--state-dir", state], runs) for n in (1, 1000)}
    dry = {n: median_wall([flowrun, workflow(n), "-q", "--dry-run"], runs) for n in (1, 1000)}
    slept = {n: median_wall([flowrun, sleeps(n), "-q", "--state-dir", state], runs) for n in (1, 1000)}
    per_step = (fr[1000] - fr[1]) / 999
    per_sleep = (slept[1000] - slept[1]) / 999
    per_step_dry = (dry[1000] - dry[1]) / 999
    ansible = shutil.which("ansible-playbook")
    per_task = None
    if ansible:
        env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false",
                   ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
        argv = lambda n: [ansible, "-i", "localhost,", "-c", "local", playbook(n)]
        an = {n: median_wall(argv(n), 1 if quick else 3, env=env) for n in (1, 1000)}
        per_task = (an[1000] - an[1]) / 999
    row("per step, journal on (ms)", per_step * 1e3, "ansible per task", per_task and per_task * 1e3, "ms")
    row("per step, --dry-run (ms)", per_step_dry * 1e3, "ansible per task", per_task and per_task * 1e3, "ms")
    row("journal per side-effect-free step (ms)", max(per_step - per_step_dry, 0) * 1e3, "-", None, "ms")
    row("per step with side effects (sleep 0s) (ms)", per_sleep * 1e3, "ansible per task",
        per_task and per_task * 1e3, "ms")
    row("1,000 steps, wall (s)", fr[1000], "ansible 1,000 tasks", ansible and an[1000], "s")


def bench_validate(flowrun, tmp, quick):
    runs = 11 if quick else 21
    files = [os.path.join(ROOT, "workflows", f) for f in sorted(os.listdir(os.path.join(ROOT, "workflows")))
             if f.endswith(".yaml")]
    fv = median_wall([flowrun, "validate", *files], runs)
    peer = None
    ansible = shutil.which("ansible-playbook")
    if ansible:
        play = os.path.join(tmp, "one.yml")
        with open(play, "w") as f:
            f.write("- hosts: localhost\n  gather_facts: false\n  tasks:\n    - ansible.builtin.debug: {msg: hi}\n")
        peer = median_wall([ansible, "-i", "localhost,", "--syntax-check", play], 3 if quick else 5)
    row(f"validate {len(files)} workflows (ms)", fv * 1e3, "ansible --syntax-check", peer and peer * 1e3, "ms")


def start_log_server(tmp, marker_after, lifetime):
    """The log server (bench/log_server.py) and its base URL; stop_log_server gives its report."""
    port_file = os.path.join(tmp, "port")
    if os.path.exists(port_file):
        os.remove(port_file)
    server = subprocess.Popen([sys.executable, os.path.join(BENCH, "log_server.py"), port_file, str(marker_after),
                               str(lifetime)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if os.path.exists(port_file) and open(port_file).read():
            return server, f"http://127.0.0.1:{open(port_file).read()}"
        time.sleep(0.05)
    sys.exit("bench: the log server did not start")


def stop_log_server(server):
    """Stops the server; its report: requests and bytes per client, each worker's CPU seconds."""
    server.terminate()
    out, _ = server.communicate(timeout=60)
    return json.loads(out or b"{}")


def aiohttp_python():
    """An interpreter that imports aiohttp: this one, or Debian's (python3-aiohttp) when this one is not it."""
    for py in (sys.executable, "/usr/bin/python3"):
        if os.access(py, os.X_OK) and subprocess.run([py, "-c", "import aiohttp"], capture_output=True).returncode == 0:
            return py
    return None


POLL_RUNS = []  # one line per polling run: what the log server did, so a reader sees it was not the bottleneck


def check_polling_limits(count):
    """Says on stderr what could keep `count` monitors from running (sockets, threads, ports)."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if nofile < count + 512:
        print(f"bench: RLIMIT_NOFILE is {nofile}; {count:,} monitors need {count + 512:,} descriptors", file=sys.stderr)
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    if nproc != resource.RLIM_INFINITY and nproc < count + 512:
        print(f"bench: RLIMIT_NPROC is {nproc}; flowrun's {count:,} monitors are {count:,} threads today",
              file=sys.stderr)
    try:
        lo, hi = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
        reuse = int(open("/proc/sys/net/ipv4/tcp_tw_reuse").read())
    except OSError:
        return
    # flowrun opens a connection per poll: TIME_WAIT holds its port 60 s unless loopback may reuse it.
    if reuse == 0 and hi - lo + 1 < count * 7:
        print(f"bench: {hi - lo + 1:,} ephemeral ports and net.ipv4.tcp_tw_reuse=0: {count:,} monitors that "
              "reconnect every poll may run out", file=sys.stderr)


def monitors_workflow(count, source="url", interval=10):
    """The polling rows' workflow: `count` wait-for-marker monitors at once, each following log N
    of the log server at inputs.base (`url`) or Vast.ai instance N through it (`instance`)."""
    source_with = ('url: "${{ inputs.base }}/log/${{ n }}"' if source == "url" else
                   'instance: "${{ n }}", provider: vastai, api_key: bench-key')
    return f"""name: monitors
inputs: {{base: ""}}
steps:
  - id: all
    for_each: ${{{{ (function() local t = {{}} for i = 0, {count - 1} do t[#t + 1] = i end return t end)() }}}}
    as: n
    concurrency: {count}
    steps:
      - id: wait
        type: wait-for-marker
        with: {{{source_with}, marker: VASTAI_PIPELINE_COMPLETED_SUCCESSFULLY,
               interval: {interval}s, timeout: 10m, show_logs: none}}
"""


def bench_polling(flowrun, tmp, quick):
    poll_source(flowrun, tmp, quick, "url")
    poll_source(flowrun, tmp, quick, "instance")


def poll_source(flowrun, tmp, quick, source):
    """The polling rows of one wait-for-marker source: `url` (GET /log/N with Range) or `instance`
    (Vast.ai instance N through the vastai provider: its state, request_logs, the result_url)."""
    sizes = (1000, 4000) if quick else (1000, 4000, 10000)
    interval = 10
    # Polls at 0, 10, 20, ...: each url monitor polls 4 (7) times; an instance monitor, whose
    # polls cost three requests and 0.3 s each, 3 (7) times with --quick, to keep it short.
    marker_after = (25 if source == "url" else 15) if quick else 60
    aiohttp_py = aiohttp_python()
    node = shutil.which("node") or shutil.which("nodejs")
    contenders = [("flowrun", "flowrun", "flowrun"), ("node", "node fetch", "node-monitor"),
                  ("aiohttp", "python aiohttp", "aiohttp-monitor"), ("threads", "python threads", "python-requests")]
    prefix = "" if source == "url" else "instance "  # the names of the instance rows
    mode = [] if source == "url" else ["instance"]

    def argv(who, count, base):
        if who == "flowrun":
            wf = os.path.join(tmp, f"monitors{count}.yaml")
            with open(wf, "w") as f:
                f.write(monitors_workflow(count, source, interval))
            return [flowrun, wf, "-q", "--state-dir", os.path.join(tmp, f"pstate{source}{count}"), "--set",
                    f"base={base}"]
        if who == "node":
            return node and [node, os.path.join(BENCH, "node_monitor.js"), base, str(count), str(interval), *mode]
        if who == "aiohttp":
            return aiohttp_py and [aiohttp_py, os.path.join(BENCH, "aiohttp_monitor.py"), base, str(count),
                                   str(interval), *mode]
        # One thread per monitor, the whole log on every poll: the naive baseline, where it is cheap.
        return source == "url" and not quick and count <= 1000 and [
            sys.executable, os.path.join(BENCH, "python_monitor.py"), base, str(count), str(interval)]

    results = {}  # (who, count) -> {rss, cpu, polls, bytes}
    for count in sizes:
        check_polling_limits(count)
        for who, label, agent in contenders:
            server, base = start_log_server(tmp, marker_after, 900)
            command = argv(who, count, base)
            if not command:
                stop_log_server(server)
                continue
            try:  # the vastai provider's base URL: this server, with the dummy key above
                wall, rss, cpu, out, code = run_measured(command, env=dict(os.environ, VAST_URL=base), check=False)
            finally:
                report = stop_log_server(server)
            stats = report.get("clients", {}).get(agent, {"requests": 0, "bytes": 0, "polls": 0})
            workers = report.get("worker_cpu_s", [0])
            found = out.strip().splitlines()[-1] if out.strip() else ""
            if code != 0 or (who != "flowrun" and found != f"{count} markers found"):
                print(f"bench: {label}, {count:,} {source} monitors failed (exit {code}): {out[-1500:]}",
                      file=sys.stderr)
                POLL_RUNS.append(f"{source:8} {label:16} {count:>7,}  FAILED (exit {code}); see stderr")
                continue
            results[(who, count)] = {"rss": rss, "cpu": cpu, "polls": stats["polls"],
                                     "bytes": stats["bytes"], "label": label}
            POLL_RUNS.append(f"{source:8} {label:16} {count:>7,} {wall:7.1f} {stats['polls']:>8,} "
                             f"{stats['requests']:>8,} {stats['bytes'] / max(stats['polls'], 1):>9,.0f} "
                             f"{sum(workers):>8.2f} "
                             f"{100 * max(workers) / wall:>8.1f}% {100 * report.get('busiest_second', 0):>8.0f}% "
                             f"{len(workers):>3} {sum(report['peak_connections']):>8,}")
            print(f"bench: {label}, {count:,} {source} monitors: {wall:.1f} s", file=sys.stderr, flush=True)

    def get(who, count, key):
        r = results.get((who, count))
        return r and r[key]

    def per_poll(who, count):
        r = results.get((who, count))
        return r and r["polls"] and r["cpu"] / r["polls"] * 1000

    peers = [c for c in contenders if c[0] != "flowrun"]
    for count in sizes:
        first = True
        for who, label, _ in peers:
            if (who, count) in results:
                row(f"{prefix}{count:,} monitors: peak RSS (MiB)" if first else "  the same", get("flowrun", count, "rss"),
                    label, get(who, count, "rss"), "MiB")
                first = False
        first = True
        for who, label, _ in peers:
            if (who, count) in results:
                row(f"{prefix}{count:,}: CPU s per 1,000 polls" if first else "  the same", per_poll("flowrun", count),
                    label, per_poll(who, count), "s")
                first = False
    # The best event-loop peer is the leaner one at the largest size both ran.
    top = max((c for c in sizes if ("flowrun", c) in results), default=None)
    loops = [(who, label) for who, label, _ in peers if who != "threads" and (who, top) in results]
    if top is None or not loops:
        return
    mem = min(loops, key=lambda p: results[(p[0], top)]["rss"])
    cpu = min(loops, key=lambda p: per_poll(p[0], top))

    def slope(who, a, b):
        ra, rb = get(who, a, "rss"), get(who, b, "rss")
        return ra is not None and rb is not None and (rb - ra) * 1024 / (b - a) or None

    for a, b in zip(sizes, sizes[1:]):
        row(f"{prefix}RSS slope {a:,}->{b:,} (KiB/monitor)", slope("flowrun", a, b), mem[1], slope(mem[0], a, b), "KiB")
    row(f"{prefix}{top:,}: memory vs best event-loop peer", get("flowrun", top, "rss"), mem[1], get(mem[0], top, "rss"),
        "MiB")
    row(f"{prefix}{top:,}: CPU vs best event-loop peer", per_poll("flowrun", top), cpu[1], per_poll(cpu[0], top), "s")


def bench_scan(flowrun, tmp, quick):
    size = (256 if quick else 1024) << 20
    log = os.path.join(tmp, "big.log")
    line = b"2026-11-23 10:00:00 frame 00001234/99999 encoding at 31.4 fps, bitrate 4123 kbit/s " + b"." * 14 + b"\n"
    with open(log, "wb") as f:
        block = line * 10000
        for _ in range(size // len(block)):
            f.write(block)
        f.write(b"RESULT_URL=https://b2.example/output/x.mp4\nVASTAI_PIPELINE_COMPLETED_SUCCESSFULLY\n")
    real = os.path.getsize(log)
    empty = os.path.join(tmp, "empty.log")
    with open(empty, "w") as f:
        f.write("RESULT_URL=https://b2.example/output/x.mp4\nVASTAI_PIPELINE_COMPLETED_SUCCESSFULLY\n")
    marker = "VASTAI_PIPELINE_COMPLETED_SUCCESSFULLY"
    # workflows/video_batch.yaml's wait-for-marker settings (its default inputs), nothing shown.
    video = {"marker": marker,
             "capture": {"result_url": [{"pattern": r"RESULT_URL=(\S+)", "validate": "^(https?|s3|file)://"},
                                        {"pattern": r"""https://[^\s"'<>]+""", "validate": "/(output|both)/"}]},
             "fail_on": ["Traceback (most recent call last)", "CUDA out of memory", {"regex": "^FATAL"}],
             "progress": r"(\d+(?:\.\d+)?)%|frame (\d+)/(\d+)"}

    def workflow(name, path, extra):
        wf = os.path.join(tmp, name)
        with_ = {"file": path, "marker": marker, "interval": "10ms", "timeout": "10m", "show_logs": "none", **extra}
        with open(wf, "w") as f:
            json.dump({"name": "scan", "steps": [{"id": "wait", "type": "wait-for-marker", "with": with_}]}, f)
        return wf

    def rg_escape(text):  # ripgrep refuses escapes of characters that are not special
        return "".join("\\" + c if c in "\\.+*?()|[]{}^$" else c for c in text)

    runs = 3
    state = os.path.join(tmp, "sstate")
    subprocess.run(["cat", log], stdout=subprocess.DEVNULL)  # warm the page cache
    mib = real / (1 << 20)

    def flowrun_rate(extra):
        base = median_wall([flowrun, workflow("scan0.yaml", empty, extra), "-q", "--state-dir", state], runs)
        return mib / (median_wall([flowrun, workflow("scan.yaml", log, extra), "-q", "--state-dir", state], runs) - base)

    fr = flowrun_rate({})
    rg = median_wall(["rg", "-F", "-m1", marker, log], runs)
    grep = median_wall(["grep", "-F", "-m1", marker, log], runs)
    row(f"marker scan, {mib:,.0f} MiB (MiB/s)", fr, "rg -F -m1", mib / rg, "MiB/s", better="higher")
    row("  the same", fr, "grep -F -m1", mib / grep, "MiB/s", better="higher")
    fv = flowrun_rate({k: v for k, v in video.items() if k != "marker"})
    alternation = [rg_escape(marker), video["capture"]["result_url"][0]["pattern"],
                   video["capture"]["result_url"][1]["pattern"], rg_escape(video["fail_on"][0]),
                   rg_escape(video["fail_on"][1]), video["fail_on"][2]["regex"], video["progress"]]
    rgc = median_wall(["rg", "-c"] + [a for p in alternation for a in ("-e", p)] + [log], runs)
    row("scan with video_batch's patterns", fv, "rg -c (same alternation)", mib / rgc, "MiB/s", better="higher")
    os.remove(log)


def bench_ingest(flowrun, tmp, quick):
    import sqlite3
    batches, per_batch, key = 4, 5000, "sk-bench-ingest"
    names = [f"msgbatch_bench_{k}" for k in range(batches)]
    scenario = os.path.join(tmp, "batches.json")
    with open(scenario, "w") as f:
        json.dump({"api_key": key, "batches": {b: {"ends_after": 0, "generate": {"prefix": f"{b}-", "count": per_batch}}
                                               for b in names}}, f)
    sim = subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "sim", "batch_sim.py"), scenario,
                            "--lifetime", "900"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        api = f"http://127.0.0.1:{int(sim.stdout.readline())}"
        # The database as the submitter leaves it: the batches submitted, every request pending.
        template = os.path.join(tmp, "ingest-template.db")
        db = sqlite3.connect(template)
        db.executescript(open(os.path.join(ROOT, "workflows", "sql", "batch_results.sql")).read())
        for b in names:
            db.execute("INSERT INTO batches (id) VALUES (?)", (b,))
            db.executemany("INSERT INTO requests (custom_id, batch_id) VALUES (?, ?)",
                           ((f"{b}-{i}", b) for i in range(per_batch)))
        db.commit()
        db.close()
        total = batches * per_batch

        def stored(path):
            c = sqlite3.connect(path)
            try:
                return (c.execute("SELECT count(*) FROM requests WHERE status != 'pending'").fetchone()[0],
                        c.execute("SELECT count(*) FROM batches WHERE status = 'completed'").fetchone()[0])
            finally:
                c.close()

        # On tmpfs when there is one: 24 commits of fsyncs measure the disk, not the two programs.
        shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        dbdir = tempfile.mkdtemp(prefix="flowrun-ingest-", dir=shm or tmp)
        env = dict(os.environ, ANTHROPIC_API_KEY=key, ANTHROPIC_BASE_URL=api)
        state = os.path.join(tmp, "istate")
        runs = 3 if quick else 5
        walls = {"flowrun": [], "python": []}
        for i in range(runs):
            for who in ("flowrun", "python"):  # alternated, so both see the same machine
                target = os.path.join(dbdir, f"ingest-{who}.db")
                shutil.copyfile(template, target)
                if who == "flowrun":
                    argv = [flowrun, os.path.join(ROOT, "workflows", "batch_results.yaml"), "--once", "-q",
                            "--state-dir", state, "--set", f"database={target}", "--set", "chunk_rows=1000"]
                else:
                    argv = [sys.executable, os.path.join(BENCH, "python_ingest.py"), api, key, target, "1000"]
                wall = run_measured(argv, env=env, cwd=ROOT)[0]
                if stored(target) != (total, batches):
                    sys.exit(f"bench: {who} stored {stored(target)} (rows, batches), not {(total, batches)}")
                walls[who].append(wall)
        f, p = (total / statistics.median(walls[w]) for w in ("flowrun", "python"))
        row(f"batch results, {total:,} rows (rows/s)", f, "python executemany", p, "rows/s", better="higher")
        shutil.rmtree(dbdir, ignore_errors=True)
    finally:
        sim.terminate()
        sim.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller sizes and fewer runs")
    ap.add_argument("--only", default="steps,validate,polling,scan,ingest")
    ap.add_argument("--flowrun", default=os.path.join(ROOT, "build", "flowrun"))
    args = ap.parse_args()
    flowrun = os.path.abspath(args.flowrun)
    if not os.access(flowrun, os.X_OK):
        sys.exit(f"bench: no flowrun at {flowrun}; build it first (README)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # 10,000 monitors hold 10,000+ sockets
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))
    with tempfile.TemporaryDirectory(prefix="flowrun-bench-") as tmp:
        for name in args.only.split(","):
            print(f"bench: {name}...", file=sys.stderr, flush=True)
            {"steps": bench_steps, "validate": bench_validate, "polling": bench_polling, "scan": bench_scan,
             "ingest": bench_ingest, "polling-url": lambda *a: poll_source(*a, "url"),
             "polling-instance": lambda *a: poll_source(*a, "instance")}[name](
                flowrun, tmp, args.quick)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"\nmachine: {os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}")
    width = max([36] + [len(r[0]) for r in ROWS])
    print(f"{'measure':{width}} {'flowrun':>10}   {'peer':24} {'peer value':>10}  {'ratio':>8}")
    for name, f, peer_name, p, unit, ratio in ROWS:
        r = "-" if ratio != ratio else f"{ratio:,.1f}x"
        print(f"{name:{width}} {fmt(f):>10}   {peer_name:24} {fmt(p):>10}  {r:>8}")
    print("ratio: how many times better flowrun is (peer/flowrun for costs, flowrun/peer for speeds)")
    if POLL_RUNS:
        print(f"\npolling runs, one log server each:\n  {'source':8} {'monitor':16} {'count':>7} {'wall s':>7} "
              f"{'polls':>8} {'requests':>8} {'B/poll':>9} {'srv CPU':>8} {'busiest':>9} {'peak 1s':>9} {'wk':>3} {'peak con':>8}")
        for line in POLL_RUNS:
            print(f"  {line}")
        print("polls: GETs of /log/N (url) or of the instance's state (instance: with request_logs and the\n"
              "result_url, three requests a poll); B/poll: body bytes sent per poll, all requests counted\n"
              "srv CPU: the log server's CPU seconds in that run; busiest: its busiest worker's share of one core\n"
              "over the run's wall time; peak 1s: the same in the busiest second of any worker (100% would mean\n"
              "saturated); wk: worker processes; peak con: connections open at once, summed over the workers")


if __name__ == "__main__":
    main()
