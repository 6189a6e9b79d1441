#!/usr/bin/env python3
"""Compares flowrun binaries on the polling benchmark, run alternately so that a machine that
slows down or speeds up during the comparison weighs on each the same: N wait-for-marker
monitors (bench/bench.py's workflow, url or instance source) against bench/log_server.py, each
binary once per round. Prints each run's CPU seconds per 1,000 polls (user + system over the
polls the log server counted) and peak RSS, then each binary's medians and their ratio to the
first binary's.

A full polling run (`bench/bench.py --only polling`) compares flowrun with its peers; this
compares two builds of flowrun, e.g. main's and a branch's, which one run each cannot tell
apart when the machine's own variation (10-20% between runs here) is larger than the change.

Usage: bench/compare_polling.py BINARY BINARY... [--count N] [--source url|instance] [--runs R]
  cp build/flowrun /tmp/flowrun-before; (change, build); \\
  bench/compare_polling.py /tmp/flowrun-before build/flowrun --source instance --count 4000
"""
import argparse
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (its log server, monitors' workflow and measured runs)


def one_run(binary, count, source, marker_after):
    """(CPU s per 1,000 polls, peak RSS MiB) of one run of `binary`."""
    with tempfile.TemporaryDirectory() as tmp:
        server, base = bench.start_log_server(tmp, marker_after, 900)
        workflow = os.path.join(tmp, "monitors.yaml")
        with open(workflow, "w") as f:
            f.write(bench.monitors_workflow(count, source=source))
        try:
            _, rss, cpu, out, code = bench.run_measured(
                [binary, workflow, "-q", "--state-dir", os.path.join(tmp, "state"), "--set", f"base={base}"],
                env=dict(os.environ, VAST_URL=base), check=False)
        finally:
            report = bench.stop_log_server(server)
    polls = report.get("clients", {}).get("flowrun", {}).get("polls", 0)
    if code != 0 or polls == 0:
        sys.exit(f"compare_polling: {binary} failed (exit {code}, {polls} polls): {out[-1500:]}")
    return cpu / polls * 1000, rss


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binaries", nargs="+", help="flowrun binaries; the first is the one the others are compared to")
    parser.add_argument("--count", type=int, default=4000, help="monitors at once (default 4000)")
    parser.add_argument("--source", choices=("url", "instance"), default="url", help="their log source (default url)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each binary, alternated (default 3)")
    parser.add_argument("--marker-after", type=float, default=40, help="seconds before the logs show the marker (default 40)")
    args = parser.parse_args()
    for binary in args.binaries:
        if not os.access(binary, os.X_OK):
            sys.exit(f"compare_polling: {binary} is not an executable")
    bench.check_polling_limits(args.count)

    results = {binary: [] for binary in args.binaries}
    for run in range(args.runs):
        for binary in args.binaries:
            cpu, rss = one_run(binary, args.count, args.source, args.marker_after)
            results[binary].append((cpu, rss))
            print(f"run {run + 1}  {binary}: {cpu:.3f} CPU s per 1,000 polls, peak RSS {rss:.1f} MiB", flush=True)

    first = args.binaries[0]
    base_cpu = statistics.median(c for c, _ in results[first])
    base_rss = statistics.median(r for _, r in results[first])
    print(f"\nmedians of {args.runs} runs, {args.count:,} {args.source} monitors:")
    for binary in args.binaries:
        cpu = statistics.median(c for c, _ in results[binary])
        rss = statistics.median(r for _, r in results[binary])
        print(f"  {binary}: {cpu:.3f} CPU s per 1,000 polls ({cpu / base_cpu:.2f}x the first), "
              f"peak RSS {rss:.1f} MiB ({rss / base_rss:.2f}x)")


if __name__ == "__main__":
    main()
