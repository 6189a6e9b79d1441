"""What every simulator in tools/sim/ shares: its command line and how it serves.

Usage of a simulator: NAME.py SCENARIO.json [--log REQUESTS.jsonl] [--lifetime SECONDS]
"""
import json
import sys
import threading
from http.server import ThreadingHTTPServer


def command_line():
    """(scenario from the JSON file named first, the --log path or None, the --lifetime in seconds)."""
    args = sys.argv[1:]
    with open(args[0]) as f:
        scenario = json.load(f)
    log_path = args[args.index("--log") + 1] if "--log" in args else None
    lifetime = float(args[args.index("--lifetime") + 1]) if "--lifetime" in args else 120.0
    return scenario, log_path, lifetime


def serve(handler, lifetime):
    """Serves on 127.0.0.1 at a free port, printed as the first line on stdout (the tests read
    it), and stops by itself after `lifetime` seconds."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    threading.Timer(lifetime, server.shutdown).start()
    server.serve_forever()
