"""What a ``/metrics`` scrape costs with 1,000,000 units queued.

A real coordinator process on a scratch database holding ``--units`` work units. The
fleet-wide gauges come from a GROUP BY over every unit; the coordinator reads them at
most once per ``metrics_cache_s``. The run times the first scrape (the read), then
``--scrapes`` scrapes from ``--concurrency`` scrapers at once (served from that read),
and the bare GROUP BY on the same server: the cached scrape is compared with it.

Prints one JSON object; exit status 1 when a cached scrape's median is not at least
``--min-ratio`` times cheaper than the bare query.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import aiohttp

from benchmarks.leasing import seed_units, start_coordinator
from coordinator import queries as q
from runtime import database
from schemas.settings import Settings
from soundfleet.cli_db import migrate_target
from soundfleet.fleet import drop_database, fresh_database


async def _scrapes(url: str, n: int, concurrency: int) -> list[float]:
    times: list[float] = []
    async with aiohttp.ClientSession() as http:

        async def one() -> None:
            started = time.perf_counter()
            async with http.get(f"{url}/metrics") as resp:
                assert resp.status == 200
                await resp.read()
            times.append(time.perf_counter() - started)

        for _ in range(n // concurrency):
            await asyncio.gather(*(one() for _ in range(concurrency)))
    return times


async def _bare_query(dsn: str, rounds: int) -> list[float]:
    times = []
    async with database.connection(dsn) as conn:
        for _ in range(rounds):
            started = time.perf_counter()
            await q.units_by_state(conn)
            times.append(time.perf_counter() - started)
    return times


def run(admin: str, units: int, scrapes: int, concurrency: int) -> dict[str, Any]:
    """Seed, start a coordinator, scrape; the JSON summary."""
    dsn = fresh_database(admin, "soundfleet_metrics")
    try:
        migrate_target(database.DatabaseTarget(dsn, embedded=False))
        asyncio.run(seed_units(dsn, units))
        bare = asyncio.run(_bare_query(dsn, 3))
        proc, url = start_coordinator(dsn, 1)
        try:
            first = asyncio.run(_scrapes(url, 1, 1))[0]
            cached = asyncio.run(_scrapes(url, scrapes, concurrency))
        finally:
            proc.terminate()
            proc.wait(30)
    finally:
        drop_database(admin, dsn)
    bare_s = statistics.median(bare)
    cached_s = statistics.median(cached)
    return {
        "units": units,
        "bare_group_by_s": round(bare_s, 4),
        "first_scrape_s": round(first, 4),
        "cached_scrape_median_s": round(cached_s, 4),
        "cached_scrape_max_s": round(max(cached), 4),
        "scrapes": len(cached),
        "concurrency": concurrency,
        "cached_vs_bare": round(bare_s / cached_s, 1),
    }


def main() -> None:
    """Run once and print the JSON summary."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--units", type=int, default=1_000_000)
    p.add_argument("--scrapes", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=20)
    p.add_argument("--min-ratio", type=float, default=10.0)
    args = p.parse_args()
    result = run(database.resolve(Settings()).dsn, args.units, args.scrapes, args.concurrency)
    result["min_ratio"] = args.min_ratio
    result["ok"] = result["cached_vs_bare"] >= args.min_ratio
    print(json.dumps(result))
    raise SystemExit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
