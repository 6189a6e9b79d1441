#!/usr/bin/env python3
"""The peer of the polling benchmark: a monitor in the style people write today. One thread per
instance, `requests` + `time.sleep`, the whole log fetched on every poll, the marker searched in it.

Usage: python_monitor.py BASE_URL COUNT INTERVAL_SECONDS
"""
import sys
import threading
import time

import requests

MARKER = "VASTAI_PIPELINE_COMPLETED_SUCCESSFULLY"


def watch(url, interval, done):
    while True:
        try:
            r = requests.get(url, timeout=60)
            if MARKER in r.text:
                done.append(url)
                return
        except requests.RequestException:
            pass
        time.sleep(interval)


def main():
    base, count, interval = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    done = []
    threads = [threading.Thread(target=watch, args=(f"{base}/log/{i}", interval, done)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"{len(done)} markers found")


if __name__ == "__main__":
    main()
