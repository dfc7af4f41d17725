"""soundfleet vs Scrapy on the same 200,000-id user sweep, one simulator, one run.

(a) a Scrapy spider (``benchmarks/peers/scrapy_sweep.py``) writing a JSON-lines feed,
    same concurrency, AutoThrottle and download delay off;
(b) soundfleet: a coordinator and 2 workers landing every user in PostgreSQL;
(c) the bare aiohttp ceiling: the same requests, nothing decoded or stored.

Prints JSON with users/s for each and the ratios. Target: soundfleet >= 2x Scrapy.
The ceiling is measured before and after, as the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import psutil

from benchmarks.sweep import ceiling, fleet_run, scratch_db
from schemas.settings import Settings
from soundfleet import database, processes


def scrapy_run(web: str, ids: int, concurrency: int, out: Path) -> dict[str, Any]:
    """Run the Scrapy peer in its own process; its crawl time and item count."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.peers.scrapy_sweep",
            "--web",
            web,
            "--api",
            web + "/api",
            "--id-from",
            "1",
            "--id-to",
            str(ids + 1),
            "--concurrency",
            str(concurrency),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the Scrapy peer failed:\n{proc.stderr[-2000:]}")
    stats: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    with out.open() as fh:
        lines = sum(1 for _ in fh)
    stats["feed_lines"] = lines
    stats["users_per_s"] = round(ids / stats["seconds"], 1)
    return stats


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    """Run the three contestants against one simulator."""
    admin = database.resolve(Settings()).dsn
    log_dir = Path(tempfile.mkdtemp(prefix="soundfleet-vs-scrapy-"))
    sim = processes.start(
        "simulator",
        processes.soundfleet_argv(
            "simulator", "--port", "0", "--seed", "1", "--users", str(args.ids)
        ),
        log_dir=log_dir,
        env={**os.environ, "SOUNDFLEET_LOG_LEVEL": "warning"},
    )
    try:
        assert sim.url
        sim_proc = psutil.Process(sim.proc.pid)
        before = await ceiling(sim.url, args.ids, args.concurrency, sim_proc)
        peer = await asyncio.to_thread(
            scrapy_run, sim.url, args.ids, args.concurrency, log_dir / "scrapy.jsonl"
        )
        # a fresh, migrated database of its own: the admin database may be unmigrated,
        # and a second run must not land on the first one's rows
        async with scratch_db(admin, "bench_vs_scrapy") as dsn:
            fleet = await fleet_run(
                dsn, sim.url, args.ids, args.concurrency, 2, args.chunk, log_dir, sim_proc
            )
        after = await ceiling(sim.url, args.ids, args.concurrency, sim_proc)
    finally:
        processes.stop(sim, grace_s=10)
    ceiling_rate = (before["users_per_s"] + after["users_per_s"]) / 2
    return {
        "ids": args.ids,
        "concurrency": args.concurrency,
        "scrapy": peer,
        "soundfleet_2_workers": {k: fleet[k] for k in ("users_per_s", "seconds", "rows_landed")},
        "ceiling": {"users_per_s": round(ceiling_rate, 1), "runs": [before, after]},
        "soundfleet_over_scrapy": round(fleet["users_per_s"] / peer["users_per_s"], 2),
        "soundfleet_over_ceiling": round(fleet["users_per_s"] / ceiling_rate, 3),
        "scrapy_over_ceiling": round(peer["users_per_s"] / ceiling_rate, 3),
        "target_soundfleet_over_scrapy": 2.0,
        "logs": str(log_dir),
    }


def main() -> None:
    """Print the comparison's JSON."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--ids", type=int, default=200_000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--chunk", type=int, default=1000)
    args = p.parse_args()
    print(json.dumps(asyncio.run(main_async(args)), indent=2))


if __name__ == "__main__":
    main()
