#!/usr/bin/env python3
"""Where a waiting monitor's memory goes: runs N url wait-for-marker monitors (bench/bench.py's
polling workflow) against bench/log_server.py, and after AT seconds reads the flowrun process's
/proc/PID/status and /proc/PID/smaps: its RSS and threads, the resident part of the fibers'
stacks (their 512 KiB mappings), the heap and the other mappings. The share a monitor of the
heap includes its fixed part; the difference between two sizes is the cost of a monitor.

Usage: bench/monitor_memory.py N [--at SECONDS] [--flowrun build/flowrun]
  bench/monitor_memory.py 4000            the steady state of 4,000 monitors (after 30 s)
  bench/monitor_memory.py 10000 --at 2.5  the start, when every item makes its first request
For what each heap object holds, run the same workflow under heaptrack (docs/performance.md).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (its log server and monitors' workflow)

FIBER_STACK_BYTES = 512 << 10  # FiberScheduler::kStackSize: one mapping per fiber, plus its guard page


def resident_by_mapping(pid):
    """{kind: resident KiB}: fiber stacks, [heap], [anon] and each file mapped."""
    out, kind = {}, None
    with open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                fields = line.split()
                start, end = (int(x, 16) for x in fields[0].split("-"))
                name = fields[5] if len(fields) > 5 else "[anon]"
                kind = "fiber stacks" if end - start == FIBER_STACK_BYTES else name
            elif line.startswith("Rss:"):
                out[kind] = out.get(kind, 0) + int(line.split()[1])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("count", type=int)
    ap.add_argument("--at", type=float, default=30.0, help="seconds after the start to read (default 30)")
    ap.add_argument("--flowrun", default=os.path.join(bench.ROOT, "build", "flowrun"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server, base = bench.start_log_server(tmp, 600, 900)
        path = os.path.join(tmp, "monitors.yaml")
        with open(path, "w") as f:
            f.write(bench.monitors_workflow(args.count))
        p = subprocess.Popen([args.flowrun, path, "-q", "--state-dir", os.path.join(tmp, "state"), "--set",
                              f"base={base}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(args.at)
            if p.poll() is not None:
                sys.exit(f"monitor_memory: flowrun exited early ({p.returncode})")
            status = open(f"/proc/{p.pid}/status").read()
            mappings = resident_by_mapping(p.pid)
        finally:
            p.kill()
            p.wait()
            bench.stop_log_server(server)
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))
    print(f"{args.count:,} monitors after {args.at:g} s: RSS {rss / 1024:.1f} MiB, {threads} threads")
    for kind, kib in sorted(mappings.items(), key=lambda kv: -kv[1])[:10]:
        # Per monitor only for memory that grows with monitors; libraries are a fixed cost.
        grows = kind.startswith("[") or kind == "fiber stacks"
        share = f"{kib / args.count:7.2f} KiB a monitor" if grows else ""
        print(f"  {kind:60.60} {kib / 1024:8.1f} MiB {share}")


if __name__ == "__main__":
    main()
