"""Soak: a fleet crawling for M minutes while its memory and connections are sampled.

Starts a simulator (a 10,000,000-id world, so work never runs out), a coordinator and
two workers on loopback, submits one large user sweep, and every few seconds samples
each process's RSS and open TCP connections. Prints JSON with the samples' summary and
the growth over the second half of the run (RSS at the end vs the median of the
second half's first quarter), which must stay under 10%.

    python -m benchmarks.soak --minutes 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from runtime import database, processes
from runtime.client import CoordinatorClient
from schemas.settings import Settings
from soundfleet.cli_db import migrate_target
from soundfleet.fleet import Fleet, FleetSpec, drop_database, scratch_database, start_fleet


def _sample(service: processes.Service) -> dict[str, float]:
    try:
        proc = psutil.Process(service.proc.pid)
        procs = [proc, *proc.children(recursive=True)]
        rss = sum(p.memory_info().rss for p in procs)
        conns = sum(len(p.net_connections(kind="tcp")) for p in procs)
    except psutil.Error:
        return {"rss_mb": float("nan"), "connections": float("nan")}
    return {"rss_mb": rss / 2**20, "connections": float(conns)}


def growth(values: list[float]) -> float:
    """Relative growth over the second half: last value vs the start of the second half."""
    half = values[len(values) // 2 :]
    if len(half) < 4:
        return 0.0
    base = sorted(half[: max(1, len(half) // 4)])[len(half[: max(1, len(half) // 4)]) // 2]
    return (half[-1] - base) / base if base else 0.0


async def _soak(fleet: Fleet, minutes: float, every_s: float) -> dict[str, Any]:
    assert fleet.coordinator.url is not None
    samples: dict[str, list[dict[str, float]]] = {
        s.name: [] for s in [fleet.coordinator, *fleet.workers]
    }
    async with CoordinatorClient(fleet.coordinator.url, fleet.researcher_key) as client:
        job = await client.submit(
            "user_sweep", {"id_from": 1, "id_to": 10_000_001, "chunk": 1000, "shuffle": True}
        )
        deadline = time.monotonic() + minutes * 60
        while time.monotonic() < deadline:
            for s in [fleet.coordinator, *fleet.workers]:
                samples[s.name].append(_sample(s))
            await asyncio.sleep(every_s)
        final = await client.job(job.id)
        await client.cancel(job.id)
    out: dict[str, Any] = {
        "units_done": final.progress.done,
        "rows_landed": final.progress.rows_landed,
    }
    worst = 0.0
    for name, series in samples.items():
        rss = [x["rss_mb"] for x in series]
        conns = [x["connections"] for x in series]
        g_rss, g_conn = growth(rss), growth(conns)
        worst = max(worst, g_rss, g_conn)
        out[name] = {
            "rss_mb_first": round(rss[0], 1),
            "rss_mb_peak": round(max(rss), 1),
            "rss_mb_last": round(rss[-1], 1),
            "rss_growth_second_half": round(g_rss, 4),
            "connections_last": conns[-1],
            "connections_growth_second_half": round(g_conn, 4),
        }
    out["worst_growth_second_half"] = round(worst, 4)
    out["target_growth"] = 0.10
    out["ok"] = worst < 0.10
    return out


def main() -> None:
    """Run the soak and print its JSON."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="soundfleet-soak-") as tmp:
        target = database.resolve(Settings())
        dsn = scratch_database(target.dsn, "soundfleet_soak")
        migrate_target(database.DatabaseTarget(dsn, embedded=target.embedded))
        fleet = start_fleet(dsn, FleetSpec(users=10_000_000, workers=2), Path(tmp))
        try:
            result = asyncio.run(_soak(fleet, args.minutes, args.every))
        finally:
            fleet.stop()
            drop_database(target.dsn, dsn)
        result["minutes"] = args.minutes
        print(json.dumps(result))


if __name__ == "__main__":
    main()
