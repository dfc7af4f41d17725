"""A hostile platform against a real worker: a 300 MB body and a next_href that loops.

One worker process (4 units at a time) crawls the reposters of a few tracks on the
simulator, where one track's list streams a body of ``--body-mb`` megabytes without a
Content-Length and another's page names itself as its next page. The run samples the
worker's resident memory every 0.1 s and checks, from the database, that

* the huge-body unit ends ``dead`` with the size cap as its reason, memory staying under
  ``--rss-ceiling-mb`` throughout;
* the looping unit ends ``failed`` (not retried) naming the repeated page;
* every other unit is ``done``: the worker kept serving them meanwhile.

Prints one JSON object; exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from runtime import database
from runtime.client import CoordinatorClient
from schemas.settings import Settings
from simulator.world import World
from soundfleet.cli_db import migrate_target
from soundfleet.fleet import FleetSpec, drop_database, fresh_database, start_fleet


class _RssSampler(threading.Thread):
    """The peak resident memory of a process tree, sampled every ``period_s``."""

    def __init__(self, pid: int, period_s: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.period_s = period_s
        self.peak = 0
        self.first = 0
        self._halt = threading.Event()

    def _rss(self) -> int:
        total = 0
        for p in [self.proc, *self.proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                continue
        return total

    def run(self) -> None:
        self.first = self._rss()
        while not self._halt.is_set():
            try:
                self.peak = max(self.peak, self._rss())
            except psutil.Error:
                return
            self._halt.wait(self.period_s)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


async def _run_jobs(url: str, key: str, tracks: list[int], timeout_s: float) -> Any:
    async with CoordinatorClient(url, key) as client:
        job = await client.submit(
            "track_timelines",
            {"track_ids": tracks, "lists": ["reposters"], "timestamps": "page"},
            max_attempts=2,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            view = await client.job(job.id)
            if view.state in ("done", "failed", "cancelled"):
                return view
            await asyncio.sleep(0.5)
        return await client.job(job.id)


async def _units(dsn: str) -> list[dict[str, Any]]:
    async with database.connection(dsn) as conn:
        rows = await conn.fetch(
            "SELECT (payload->>'track_id')::bigint AS track, state, last_error, rows_landed "
            "FROM work_units ORDER BY 1"
        )
    return [dict(r) for r in rows]


def largest_page_parse_s() -> dict[str, float]:
    """Event-loop time to validate the largest body under the cap (1,000 items, ~31 MB).

    Validation runs on the worker's loop; this bounds how long it can stall heartbeats
    and SIGTERM handling: the fast path, and the item-by-item path one odd item causes.
    """
    from crawler.config import WorkerSettings
    from schemas import api_v2
    from simulator import render

    world = World.generate(3, 2_000)
    cap = WorkerSettings(api_key="k").max_body_bytes
    user = render.full_user(world, 5, world.end_us)
    user["description"] = "x" * (cap // api_v2.MAX_PAGE_ITEMS - 2_000)
    items = [dict(user, id=i + 1) for i in range(api_v2.MAX_PAGE_ITEMS)]
    body = json.dumps({"collection": items, "next_href": None}).encode()
    parser = api_v2.ListPageParser(api_v2.User)
    out = {"body_mb": round(len(body) / 2**20, 1)}
    for name, data in (
        ("fast_s", body),
        ("odd_item_s", body.replace(b'"id": 1,', b'"id": "x",', 1)),
    ):
        started = time.perf_counter()
        parser.parse_body(data)
        out[name] = round(time.perf_counter() - started, 3)
    return out


def run(
    admin: str, body_mb: int, rss_ceiling_mb: float, others: int, timeout_s: float
) -> dict[str, Any]:
    """One hostile run on a scratch database of ``admin``'s server; the JSON summary."""
    world = World.generate(5, 3_000)
    reposts = np.bincount(world.reposts.dst, minlength=world.tracks.id.size + 1)
    ranked = [int(t) for t in np.argsort(-reposts, kind="stable") if reposts[t] > 0]
    huge, loop, normal = ranked[0], ranked[1], ranked[2 : 2 + others]
    dsn = fresh_database(admin, "soundfleet_hostile")
    migrate_target(database.DatabaseTarget(dsn, embedded=False))
    spec = FleetSpec(
        seed=5,
        users=3_000,
        workers=1,
        time_scale=0.0,
        simulator_args=(
            "--hostile-body-tracks",
            str(huge),
            "--hostile-body-mb",
            str(body_mb),
            "--hostile-loop-tracks",
            str(loop),
        ),
        coordinator_env=(
            ("SOUNDFLEET_COORDINATOR_BUDGET_RPS", "50000"),
            ("SOUNDFLEET_COORDINATOR_LEASE_S", "30"),
            ("SOUNDFLEET_COORDINATOR_BACKOFF_BASE_S", "0.5"),
        ),
        worker_args=("--units", "4"),
    )
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="soundfleet-hostile-") as tmp:
        fleet = start_fleet(dsn, spec, Path(tmp))
        sampler = _RssSampler(fleet.workers[0].proc.pid)
        sampler.start()
        try:
            assert fleet.coordinator.url is not None
            view = asyncio.run(
                _run_jobs(fleet.coordinator.url, fleet.researcher_key, [huge, loop, *normal],
                          timeout_s)
            )  # fmt: skip
            worker_alive = fleet.workers[0].alive
        finally:
            sampler.stop()
            fleet.stop()
    units = asyncio.run(_units(dsn))
    by_track = {u["track"]: u for u in units}
    body, looped = by_track[huge], by_track[loop]
    rest = [by_track[t] for t in normal]
    checks = {
        "rss_under_ceiling": sampler.peak / 2**20 < rss_ceiling_mb,
        "huge_body_dead_with_size_reason": body["state"] == "dead"
        and "cap" in (body["last_error"] or ""),
        "loop_failed_naming_the_page": looped["state"] == "failed"
        and "repeats" in (looped["last_error"] or ""),
        "other_units_done": all(u["state"] == "done" for u in rest),
        "worker_alive": worker_alive,
    }
    ok = all(checks.values())
    result = {
        "largest_page_parse": largest_page_parse_s(),
        "body_mb": body_mb,
        "seconds": round(time.monotonic() - t0, 1),
        "worker_rss_start_mb": round(sampler.first / 2**20, 1),
        "worker_rss_peak_mb": round(sampler.peak / 2**20, 1),
        "rss_ceiling_mb": rss_ceiling_mb,
        "job_state": view.state,
        "huge_body_unit": {k: body[k] for k in ("state", "last_error")},
        "loop_unit": {k: looped[k] for k in ("state", "last_error")},
        "other_units": {"done": sum(u["state"] == "done" for u in rest), "total": len(rest)},
        "checks": checks,
        "ok": ok,
    }
    if ok:
        drop_database(admin, dsn)
    else:
        result["kept_database"] = dsn
    return result


def main(argv: list[str] | None = None) -> None:
    """Run once and print the JSON summary."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--body-mb", type=int, default=300)
    p.add_argument("--rss-ceiling-mb", type=float, default=200.0)
    p.add_argument("--others", type=int, default=6, help="well-behaved tracks crawled too")
    p.add_argument("--timeout", type=float, default=300.0, metavar="SEC")
    args = p.parse_args(argv)
    admin = database.resolve(Settings()).dsn
    result = run(admin, args.body_mb, args.rss_ceiling_mb, args.others, args.timeout)
    print(json.dumps(result, default=str))
    raise SystemExit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
