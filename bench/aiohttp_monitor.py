#!/usr/bin/env python3
"""An event-loop peer of the polling benchmark: COUNT monitors as asyncio tasks in one process,
one aiohttp session (a keep-alive pool, no limit on connections, so no monitor waits for another),
each monitor on its own timer. Like flowrun's wait-for-marker url source, a monitor asks only for
what is new (`Range: bytes=OFFSET-`), takes 206 and 416 as flowrun does, and stops at the marker's
line.

With `instance`, a monitor follows Vast.ai instance N at BASE_URL as flowrun's instance source does,
with the same requests per poll in the same order: GET /api/v0/instances/N/?owner=me (its state),
PUT /api/v0/instances/request_logs/N/ {"tail": "1000"}, 0.3 s, then GET of the result_url (no
auth; tried again 0.3 s apart until it answers 200, 30 times at most); the new lines are those
after the longest overlap of the snapshot's first lines with the last lines seen (the last TAIL
lines are kept for that).

Usage: aiohttp_monitor.py BASE_URL COUNT INTERVAL_SECONDS [url|instance]
"""
import asyncio
import sys

import aiohttp

MARKER = b"VASTAI_PIPELINE_COMPLETED_SUCCESSFULLY"


class Monitor:
    def __init__(self, url):
        self.url = url
        self.offset = 0
        self.partial = b""

    def restart(self):
        self.offset = 0
        self.partial = b""

    async def poll(self, session):
        """One poll; True once a complete line holds the marker."""
        headers = {"Range": f"bytes={self.offset}-"} if self.offset else None
        async with session.get(self.url, headers=headers) as r:
            fresh = await r.read()
            if r.status == 404:  # not there yet
                return False
            if r.status == 416:  # "bytes */SIZE": nothing new; a SIZE below the offset means the log was cut
                size = r.headers.get("Content-Range", "").rpartition("/")[2]
                if size.isdigit() and int(size) < self.offset:
                    self.restart()
                return False
            if r.status not in (200, 206):
                raise aiohttp.ClientResponseError(r.request_info, (), status=r.status)
            if r.status == 206:
                start = r.headers.get("Content-Range", "")[6:].partition("-")[0]  # "bytes START-END/SIZE"
                if not start.isdigit() or int(start) != self.offset:
                    self.restart()
                    return False
            elif self.offset:
                if len(fresh) < self.offset:
                    self.restart()
                else:
                    fresh = fresh[self.offset:]
        self.offset += len(fresh)
        text = self.partial + fresh
        end = text.rfind(b"\n") + 1  # complete lines only; the rest waits for its end
        self.partial = text[end:]
        return text.find(MARKER, 0, end) >= 0


TAIL = 1000
AUTH = {"Authorization": "Bearer bench-key", "Accept": "application/json"}
STOPPED = {"exited", "stopped", "offline", "unknown"}


class InstanceMonitor:
    def __init__(self, base, n):
        self.base = base
        self.n = n
        self.seen = []

    async def poll(self, session):
        """One poll; True once a new line holds the marker or the instance is gone."""
        async with session.get(f"{self.base}/api/v0/instances/{self.n}/", params={"owner": "me"}, headers=AUTH) as r:
            r.raise_for_status()
            row = (await r.json()).get("instances")
        if not row:
            return True  # vanished: the wait ends
        status = row.get("actual_status") or "loading"
        dead = status in STOPPED
        if status != "running" and not dead:
            return False
        async with session.put(f"{self.base}/api/v0/instances/request_logs/{self.n}/", json={"tail": str(TAIL)},
                               headers=AUTH) as r:
            r.raise_for_status()
            url = (await r.json())["result_url"]
        text = None
        for _ in range(30):
            await asyncio.sleep(0.3)  # the upload has not happened yet
            async with session.get(url) as r:
                body = await r.read()
                if r.status == 200:
                    text = body
                    break
        if text is None:
            raise aiohttp.ClientError("logs not uploaded")
        window = text.decode("utf-8", "replace").split("\n")
        if not dead or window[-1] == "":
            window.pop()  # a last line without its newline waits
        seen, overlap = self.seen, 0
        for k in range(min(len(window), len(seen)), 0, -1):  # the last k lines seen are the window's first k
            if window[k - 1] == seen[-1] and window[:k] == seen[-k:]:
                overlap = k
                break
        fresh = window[overlap:]
        self.seen = (seen + fresh)[-TAIL:]
        return dead or any("VASTAI_PIPELINE_COMPLETED_SUCCESSFULLY" in line for line in fresh)


async def watch(session, url, interval, m=None):
    m = m or Monitor(url)
    while True:
        try:
            if await m.poll(session):
                return True
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            pass  # a failed poll is retried at the next tick, as flowrun does
        await asyncio.sleep(interval)


async def main():
    base, count, interval = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
    async with aiohttp.ClientSession(connector=connector, headers={"User-Agent": "aiohttp-monitor/1"},
                                     timeout=aiohttp.ClientTimeout(total=60)) as session:
        if len(sys.argv) > 4 and sys.argv[4] == "instance":
            found = await asyncio.gather(*(watch(session, None, interval, InstanceMonitor(base, i))
                                           for i in range(count)))
        else:
            found = await asyncio.gather(*(watch(session, f"{base}/log/{i}", interval) for i in range(count)))
    print(f"{sum(found)} markers found")


if __name__ == "__main__":
    asyncio.run(main())
