#!/usr/bin/env python3
"""An event-loop peer of the polling benchmark: COUNT monitors as asyncio tasks in one process,
one aiohttp session (a keep-alive pool, no limit on connections, so no monitor waits for another),
each monitor on its own timer. Like flowrun's wait-for-marker url source, a monitor asks only for
what is new (`Range: bytes=OFFSET-`), takes 206 and 416 as flowrun does, and stops at the marker's
line.

Usage: aiohttp_monitor.py BASE_URL COUNT INTERVAL_SECONDS
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


async def watch(session, url, interval):
    m = Monitor(url)
    while True:
        try:
            if await m.poll(session):
                return True
        except (aiohttp.ClientError, asyncio.TimeoutError):
            pass  # a failed poll is retried at the next tick, as flowrun does
        await asyncio.sleep(interval)


async def main():
    base, count, interval = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
    async with aiohttp.ClientSession(connector=connector, headers={"User-Agent": "aiohttp-monitor/1"},
                                     timeout=aiohttp.ClientTimeout(total=60)) as session:
        found = await asyncio.gather(*(watch(session, f"{base}/log/{i}", interval) for i in range(count)))
    print(f"{sum(found)} markers found")


if __name__ == "__main__":
    asyncio.run(main())
