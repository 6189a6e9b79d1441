#!/usr/bin/env python3
"""A tiny SMTP server for tests: loopback only, and it stops by itself.

Usage: smtp_server.py SCENARIO.json [--log MESSAGES.jsonl] [--lifetime SECONDS]

SCENARIO (all optional): {"auth": {"username": "u", "password": "p"}} requires AUTH PLAIN or
LOGIN with those credentials before MAIL; {"starttls": true} advertises STARTTLS but refuses it
(454), as a server whose TLS is broken would; {"reject_rcpt": ["x@y"]} answers 550 to those
recipients; {"data_reply": "451 4.3.0 try later"} answers DATA's end with that line instead of
250; {"idle": SECONDS} stops the server after that long without a connection or command
(default 30), besides the lifetime (default 120). Every accepted message is appended to the log
as one JSON line {"helo", "auth", "mail_from", "rcpt_to", "data"}, data being the message
as received (dot-unstuffed, CRLF line ends, without the final "."). The first line on stdout is
the port.
"""
import base64
import json
import socketserver
import threading
import time

from sim_common import command_line

MAX_LINE = 4096
MAX_DATA = 1 << 20


def main():
    scenario, log_path, lifetime = command_line()
    auth = scenario.get("auth")
    idle = float(scenario.get("idle", 30))
    lock = threading.Lock()
    last_activity = [time.monotonic()]

    def touch():
        with lock:
            last_activity[0] = time.monotonic()

    class Handler(socketserver.StreamRequestHandler):
        timeout = 30

        def reply(self, line):
            self.wfile.write((line + "\r\n").encode())
            self.wfile.flush()

        def read_line(self):
            raw = self.rfile.readline(MAX_LINE + 1)
            touch()
            if not raw:
                return None
            return raw.decode("utf-8", "replace").rstrip("\r\n")

        def check_login(self, username, password):
            if auth and username == auth.get("username") and password == auth.get("password"):
                self.user = username
                self.reply("235 2.7.0 authenticated")
            else:
                self.reply("535 5.7.8 authentication failed")

        def auth_command(self, args):
            parts = args.split()
            mechanism = parts[0].upper() if parts else ""
            try:
                if mechanism == "PLAIN":
                    if len(parts) > 1:
                        blob = parts[1]
                    else:
                        self.reply("334 ")
                        blob = self.read_line() or ""
                    _, username, password = base64.b64decode(blob).decode().split("\0")
                    self.check_login(username, password)
                elif mechanism == "LOGIN":
                    if len(parts) > 1:
                        username = base64.b64decode(parts[1]).decode()
                    else:
                        self.reply("334 VXNlcm5hbWU6")
                        username = base64.b64decode(self.read_line() or "").decode()
                    self.reply("334 UGFzc3dvcmQ6")
                    password = base64.b64decode(self.read_line() or "").decode()
                    self.check_login(username, password)
                else:
                    self.reply("504 5.5.4 mechanism not supported")
            except (ValueError, UnicodeDecodeError):
                self.reply("501 5.5.2 cannot decode")

        def read_data(self):
            lines = []
            size = 0
            while True:
                raw = self.rfile.readline(MAX_LINE + 1)
                touch()
                if not raw:
                    return None
                line = raw.decode("utf-8", "replace")
                if line in (".\r\n", ".\n"):
                    return "".join(lines)
                if line.startswith(".."):
                    line = line[1:]
                size += len(line)
                if size <= MAX_DATA:
                    lines.append(line)

        def handle(self):
            self.helo = None
            self.user = None
            mail_from = None
            rcpt_to = []
            self.reply("220 127.0.0.1 flowrun test SMTP")
            while True:
                line = self.read_line()
                if line is None:
                    return
                verb, _, args = line.partition(" ")
                verb = verb.upper()
                if verb in ("EHLO", "HELO"):
                    self.helo = args
                    extensions = ["SIZE 1048576", "8BITMIME"]
                    if auth:
                        extensions.append("AUTH PLAIN LOGIN")
                    if scenario.get("starttls"):
                        extensions.append("STARTTLS")
                    if verb == "HELO":
                        self.reply("250 127.0.0.1")
                    else:
                        for ext in ["127.0.0.1"] + extensions[:-1]:
                            self.reply("250-" + ext)
                        self.reply("250 " + extensions[-1])
                elif verb == "STARTTLS":
                    self.reply("454 4.7.0 TLS not available")
                elif verb == "AUTH":
                    self.auth_command(args)
                elif verb == "MAIL":
                    if auth and not self.user:
                        self.reply("530 5.7.0 authentication required")
                        continue
                    mail_from = args.partition(":")[2].strip().split(" ")[0].strip("<>")
                    rcpt_to = []
                    self.reply("250 2.1.0 ok")
                elif verb == "RCPT":
                    address = args.partition(":")[2].strip().split(" ")[0].strip("<>")
                    if mail_from is None:
                        self.reply("503 5.5.1 MAIL first")
                    elif address in scenario.get("reject_rcpt", []):
                        self.reply("550 5.1.1 no such user")
                    else:
                        rcpt_to.append(address)
                        self.reply("250 2.1.5 ok")
                elif verb == "DATA":
                    if not rcpt_to:
                        self.reply("503 5.5.1 RCPT first")
                        continue
                    self.reply("354 end with <CRLF>.<CRLF>")
                    data = self.read_data()
                    if data is None:
                        return
                    if scenario.get("data_reply"):
                        self.reply(scenario["data_reply"])
                    else:
                        if log_path:
                            with lock, open(log_path, "a") as log:
                                log.write(json.dumps({"helo": self.helo, "auth": self.user, "mail_from": mail_from,
                                                      "rcpt_to": rcpt_to, "data": data}) + "\n")
                        self.reply("250 2.0.0 queued")
                    mail_from = None
                    rcpt_to = []
                elif verb == "RSET":
                    mail_from = None
                    rcpt_to = []
                    self.reply("250 2.0.0 ok")
                elif verb == "NOOP":
                    self.reply("250 2.0.0 ok")
                elif verb == "QUIT":
                    self.reply("221 2.0.0 bye")
                    return
                else:
                    self.reply("502 5.5.2 command not recognized")

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    started = time.monotonic()

    def watchdog():
        while True:
            time.sleep(0.2)
            now = time.monotonic()
            with lock:
                quiet = now - last_activity[0]
            if quiet > idle or now - started > lifetime:
                server.shutdown()
                return

    threading.Thread(target=watchdog, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
