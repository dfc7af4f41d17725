"""The user sweep as a Scrapy user would write it: the peer in ``benchmarks/vs_scrapy.py``.

Run as ``python -m benchmarks.peers.scrapy_sweep --web URL --api URL --id-from A --id-to B
--concurrency C --out FILE``. It finds the client_id in the homepage's hydration (as
soundfleet's first discovery strategy does), requests ``/users/{id}`` for every id, and
writes one JSON line per live user (the fields soundfleet lands) and per gone id to a
Scrapy feed. Tuned fairly: the same concurrency as soundfleet, AutoThrottle and download
delay off, no robots.txt, no cookies, Scrapy's own retry middleware on.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.http import Response

from schemas.records import USER_COLUMNS

HYDRATION = re.compile(r"window\.__sc_hydration\s*=\s*(\[.*?\]);", re.S)
# The users columns soundfleet lands that come straight from the JSON (not the derived
# plan, not the fetch time): the same fields, named once, in schemas.records.
USER_FIELDS = tuple(c for c in USER_COLUMNS if c not in ("plan", "fetched_at"))


class UserSweep(scrapy.Spider):
    """GET /users/{id} for every id in [id_from, id_to)."""

    name = "user_sweep"

    def __init__(self, web: str, api: str, id_from: int, id_to: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.web, self.api = web.rstrip("/"), api.rstrip("/")
        self.id_from, self.id_to = int(id_from), int(id_to)

    async def start(self) -> Any:  # Scrapy >= 2.13
        self.started = time.perf_counter()
        yield scrapy.Request(self.web + "/", callback=self.parse_home, dont_filter=True)

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

    def parse_home(self, response: Response) -> Iterator[scrapy.Request]:
        match = HYDRATION.search(response.text)
        if not match:
            raise RuntimeError("no __sc_hydration on the homepage")
        entries = json.loads(match.group(1))
        client_id = next(e["data"]["id"] for e in entries if e["hydratable"] == "apiClient")
        for user_id in range(self.id_from, self.id_to):
            yield scrapy.Request(
                f"{self.api}/users/{user_id}?client_id={client_id}",
                callback=self.parse_user,
                cb_kwargs={"user_id": user_id},
                dont_filter=True,
            )

    def parse_user(self, response: Response, user_id: int) -> Iterator[dict[str, Any]]:
        if response.status == 404:
            yield {"gone_id": user_id}
            return
        data = json.loads(response.text)
        item = {k: data.get(k) for k in USER_FIELDS}
        sub = data.get("creator_subscription") or {}
        item["plan"] = (sub.get("product") or {}).get("id", "free")
        yield item


def main() -> None:
    """Run the spider with fair settings."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--web", required=True)
    p.add_argument("--api", required=True)
    p.add_argument("--id-from", type=int, required=True)
    p.add_argument("--id-to", type=int, required=True)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    process = CrawlerProcess(
        settings={
            "CONCURRENT_REQUESTS": args.concurrency,
            "CONCURRENT_REQUESTS_PER_DOMAIN": args.concurrency,
            "CONCURRENT_REQUESTS_PER_IP": 0,
            "DOWNLOAD_DELAY": 0,
            "AUTOTHROTTLE_ENABLED": False,
            "ROBOTSTXT_OBEY": False,
            "COOKIES_ENABLED": False,
            "TELNETCONSOLE_ENABLED": False,
            "EXTENSIONS": {"scrapy.extensions.remote_control.RemoteControl": None},
            "HTTPERROR_ALLOWED_CODES": [404],
            "LOG_LEVEL": "WARNING",
            "FEEDS": {args.out: {"format": "jsonlines", "overwrite": True}},
        }
    )
    process.crawl(UserSweep, web=args.web, api=args.api, id_from=args.id_from, id_to=args.id_to)
    process.start()


if __name__ == "__main__":
    main()
