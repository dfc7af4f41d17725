"""The user sweep as a Scrapy expert writes it: the Scrapy peer in ``benchmarks/vs_peers.py``.

``python -m benchmarks.peers.scrapy_sweep --web URL --dsn DSN --ids N --concurrency C``
finds the client_id in the homepage's hydration (as soundfleet's first discovery
strategy does), requests ``/users/{id}`` for ids 1..N and lands every live user (the
columns soundfleet lands) and every gone id in PostgreSQL through an asyncpg item
pipeline that COPYs batches of 2,000. Tuned as its experts would: the asyncio reactor
on uvloop; requests generated lazily from ``start()`` (the scheduler holds a few, not
N); per-domain concurrency C; one item task per response (``CONCURRENT_ITEMS``);
AutoThrottle, download delay, robots.txt, cookies and
the downloader/spider middlewares a JSON API crawl has no use for turned off; Scrapy's
own retry middleware kept. Prints its crawl time and counts as one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.http import Response

from schemas.records import GONE_COLUMNS, USER_COLUMNS

HYDRATION = re.compile(r"window\.__sc_hydration\s*=\s*(\[.*?\]);", re.S)
_TIMES = ("created_at", "last_modified")
_BATCH = 2000


class UserSweep(scrapy.Spider):
    """GET /users/{id} for every id in [1, ids]."""

    name = "user_sweep"

    def __init__(self, web: str, ids: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.web = web.rstrip("/")
        self.ids = int(ids)
        self.client_id: str | None = None
        self.found = asyncio.Event()
        self.started = time.perf_counter()

    async def start(self) -> AsyncIterator[scrapy.Request]:
        """The homepage first; then one request per id, as the scheduler asks for them."""
        self.started = time.perf_counter()
        yield scrapy.Request(self.web + "/", callback=self.parse_home, dont_filter=True)
        await self.found.wait()
        api = f"{self.web}/api/users/"
        query = f"?client_id={self.client_id}"
        for user_id in range(1, self.ids + 1):
            yield scrapy.Request(
                f"{api}{user_id}{query}",
                callback=self.parse_user,
                cb_kwargs={"user_id": user_id},
                dont_filter=True,
            )

    def closed(self, reason: str) -> None:
        """Print the crawl's time (engine start-up excluded) and counts as one JSON line."""
        stats = self.crawler.stats.get_stats() if self.crawler.stats else {}
        line = {
            "seconds": time.perf_counter() - self.started,
            "items": stats.get("item_scraped_count", 0),
            "responses": stats.get("response_received_count", 0),
            "retries": stats.get("retry/count", 0),
            "finish_reason": reason,
        }
        print(json.dumps(line), flush=True)

    def parse_home(self, response: Response) -> None:
        """Take the client_id from the page's hydration."""
        match = HYDRATION.search(response.text)
        if not match:
            raise RuntimeError("no __sc_hydration on the homepage")
        entries = json.loads(match.group(1))
        self.client_id = next(e["data"]["id"] for e in entries if e["hydratable"] == "apiClient")
        self.found.set()

    def parse_user(self, response: Response, user_id: int) -> dict[str, Any]:
        """One item per id: the user's columns, or the id marked gone.

        Returned, not yielded: Scrapy inspects the source of every generator callback
        it is handed (a bound method is a new object each time, so its cache misses).
        """
        now = datetime.now(UTC)
        if response.status == 404:
            return {"gone": (user_id, now)}
        data = json.loads(response.body)
        sub = data.get("creator_subscription") or {}
        data["plan"] = (sub.get("product") or {}).get("id", "free")
        data["fetched_at"] = now
        for key in _TIMES:
            data[key] = datetime.fromisoformat(data[key]) if data.get(key) else None
        return {"user": tuple(data.get(c) for c in USER_COLUMNS)}


class PostgresPipeline:
    """Items COPYed into PostgreSQL in batches of 2,000 over one asyncpg connection."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.users: list[tuple[Any, ...]] = []
        self.gone: list[tuple[Any, ...]] = []
        self.conn: asyncpg.Connection | None = None
        self.lock = asyncio.Lock()

    @classmethod
    def from_crawler(cls, crawler: Any) -> PostgresPipeline:
        """Built from the crawler's ``PG_DSN`` setting."""
        return cls(crawler.settings["PG_DSN"])

    async def open_spider(self) -> None:
        """Connect once."""
        self.conn = await asyncpg.connect(self.dsn)

    async def close_spider(self) -> None:
        """Land the last batch and disconnect."""
        await self._flush()
        assert self.conn is not None
        await self.conn.close()

    async def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        """Keep the row; land the batch once it is full."""
        if "user" in item:
            self.users.append(item["user"])
        else:
            self.gone.append(item["gone"])
        if len(self.users) + len(self.gone) >= _BATCH:
            await self._flush()
        return item

    async def _flush(self) -> None:
        async with self.lock:
            users, gone, self.users, self.gone = self.users, self.gone, [], []
            assert self.conn is not None
            async with self.conn.transaction():
                await self.conn.copy_records_to_table("users", records=users, columns=USER_COLUMNS)
                await self.conn.copy_records_to_table(
                    "user_ids_gone", records=gone, columns=GONE_COLUMNS
                )


_UNUSED_DOWNLOADER_MW = (
    "robotstxt.RobotsTxtMiddleware",
    "httpauth.HttpAuthMiddleware",
    "downloadtimeout.DownloadTimeoutMiddleware",
    "defaultheaders.DefaultHeadersMiddleware",
    "useragent.UserAgentMiddleware",
    "redirect.MetaRefreshMiddleware",
    "httpcompression.HttpCompressionMiddleware",
    "redirect.RedirectMiddleware",
    "cookies.CookiesMiddleware",
    "httpproxy.HttpProxyMiddleware",
)
_UNUSED_SPIDER_MW = (
    "referer.RefererMiddleware",
    "urllength.UrlLengthMiddleware",
    "depth.DepthMiddleware",
)


def main() -> None:
    """Run the spider with its experts' settings."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--web", required=True)
    p.add_argument("--dsn", required=True)
    p.add_argument("--ids", type=int, required=True)
    p.add_argument("--concurrency", type=int, default=64)
    args = p.parse_args()
    process = CrawlerProcess(
        settings={
            "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
            "ASYNCIO_EVENT_LOOP": "uvloop.Loop",
            "CONCURRENT_REQUESTS": args.concurrency,
            "CONCURRENT_REQUESTS_PER_DOMAIN": args.concurrency,
            "CONCURRENT_REQUESTS_PER_IP": 0,
            # One item per response: Scrapy starts this many tasks for each response.
            "CONCURRENT_ITEMS": 1,
            "DOWNLOAD_DELAY": 0,
            "AUTOTHROTTLE_ENABLED": False,
            "ROBOTSTXT_OBEY": False,
            "COOKIES_ENABLED": False,
            "TELNETCONSOLE_ENABLED": False,
            "LOGSTATS_INTERVAL": 0,
            "EXTENSIONS": {
                "scrapy.extensions.remote_control.RemoteControl": None,
                "scrapy.extensions.memusage.MemoryUsage": None,
            },
            "DOWNLOADER_MIDDLEWARES": {
                f"scrapy.downloadermiddlewares.{m}": None for m in _UNUSED_DOWNLOADER_MW
            },
            "SPIDER_MIDDLEWARES": {
                f"scrapy.spidermiddlewares.{m}": None for m in _UNUSED_SPIDER_MW
            },
            "ITEM_PIPELINES": {PostgresPipeline: 100},
            "PG_DSN": args.dsn,
            "HTTPERROR_ALLOWED_CODES": [404],
            "LOG_LEVEL": "WARNING",
        }
    )
    process.crawl(UserSweep, web=args.web, ids=args.ids)
    process.start()


if __name__ == "__main__":
    main()
