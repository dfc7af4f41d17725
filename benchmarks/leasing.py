"""Lease -> complete cycles per second: through the coordinator's HTTP API vs bare SQL.

Prints one JSON object. Both phases run in one invocation against the same server
(embedded, or the one ``DATABASE_URL`` names) on a scratch database:

* ``sql``: the ceiling. ``--workers`` concurrent loops in this process run the
  coordinator's own statements (claim transaction, completion transaction, job finish
  check) straight on an asyncpg pool of the coordinator's size: no HTTP, no JSON.
* ``api``: a real ``soundfleet coordinator --processes N`` subprocess (N server processes
  sharing the port, the same 16 database connections in total as the SQL loop);
  ``--workers`` simulated workers
  (one aiohttp session) each loop ``POST /v1/leases`` (``--batch`` units) then
  ``POST /v1/leases/complete`` for the whole batch.
* ``api_piggyback``: each ``POST /v1/leases`` also carries the completions of the
  worker's previous batch (``LeaseRequest.complete``): one HTTP call per batch.
* ``api_unbatched``: lease one unit, complete it with ``POST /v1/leases/{unit}/complete``
  (a worker that uses no batching at all).

``api_units_per_s`` is the better of the two batched modes (both are reported).

Each phase gets its own freshly queued job and runs for ``--seconds`` after a short
warm-up; the figure is units completed per second of wall-clock time in the window.
SQL and batched API phases alternate over ``--rounds`` (medians reported), because the
machine's load drifts between phases.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import asyncpg
import uvloop

from coordinator import queries as q
from coordinator.auth import new_key
from runtime import database
from schemas.settings import Settings
from soundfleet.cli_db import migrate_target
from soundfleet.fleet import drop_database, fresh_database

POOL_SIZE = 16


async def seed_units(dsn: str, units: int) -> int:
    async with database.connection(dsn) as conn:
        job_id: int = await conn.fetchval(
            "INSERT INTO jobs (kind, spec) VALUES ('user_sweep', '{}') RETURNING id"
        )
        await q.insert_sweep(conn, job_id, 1, units + 1, 1, 0, 8, False)
        await conn.execute("ANALYZE work_units")
    return job_id


class _Window:
    """Counts completions inside the timed window only."""

    def __init__(self, warmup_s: float, seconds: float) -> None:
        now = time.perf_counter()
        self.start = now + warmup_s
        self.end = self.start + seconds
        self.count = 0

    def add(self, n: int) -> None:
        now = time.perf_counter()
        if self.start <= now <= self.end:
            self.count += n

    @property
    def over(self) -> bool:
        return time.perf_counter() > self.end


async def _drive(
    workers: int, warmup_s: float, seconds: float, cycle: Callable[[int], Awaitable[int]]
) -> float:
    window = _Window(warmup_s, seconds)

    async def loop(i: int) -> None:
        while not window.over:
            n = await cycle(i)
            if n == 0:
                await asyncio.sleep(0.01)
            window.add(n)

    await asyncio.gather(*(loop(i) for i in range(workers)))
    return window.count / seconds


async def sql_phase(dsn: str, workers: int, batch: int, warmup_s: float, seconds: float) -> float:
    """The bare SQL loop: the coordinator's statements without HTTP."""
    pool = await asyncpg.create_pool(dsn, min_size=POOL_SIZE, max_size=POOL_SIZE)
    try:
        running: set[int] = set()

        async def cycle(i: int) -> int:
            wid = f"sql-{i}"
            async with pool.acquire() as conn:
                rows = await q.claim(conn, wid, ["user_range"], batch, 60.0)
                starting = {r.job_id for r in rows} - running
                if starting:  # as the coordinator does: once per job
                    await q.mark_jobs_running(conn, sorted(starting))
                    running.update(starting)
            if not rows:
                return 0
            async with pool.acquire() as conn:
                done = await q.complete_lean(
                    conn,
                    wid,
                    [r.unit_id for r in rows],
                    [r.token for r in rows],
                    [0] * len(rows),
                )
                await q.finish_jobs(conn, [r["job_id"] for r in done])
            return len(done)

        return await _drive(workers, warmup_s, seconds, cycle)
    finally:
        await pool.close()


async def api_phase(
    url: str, key: str, workers: int, batch: int, warmup_s: float, seconds: float, mode: str
) -> float:
    """Simulated workers through the HTTP API.

    ``mode``: ``two_calls`` (lease, then one batch complete), ``piggyback`` (each lease
    carries the previous batch's completions) or ``unbatched`` (lease 1, complete 1).
    """
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=workers)
    pending: dict[int, list[dict[str, int]]] = {i: [] for i in range(workers)}
    async with aiohttp.ClientSession(url, headers=headers, connector=connector) as session:

        async def post(path: str, body: dict[str, Any]) -> Any:
            async with session.post(path, data=json.dumps(body)) as resp:
                data = await resp.json()
                if resp.status != 200:
                    raise RuntimeError(f"{path}: {resp.status} {data}")
                return data

        async def cycle(i: int) -> int:
            wid = f"api-{i}"
            size = 1 if mode == "unbatched" else batch
            request: dict[str, Any] = {"worker_id": wid, "kinds": ["user_range"], "max_units": size}
            if mode == "piggyback":
                request["complete"] = pending[i]
            leased = await post("/v1/leases", request)
            done = sum(r["state"] == "done" for r in leased["completed"])
            units = leased["units"]
            items = [{"unit_id": u["unit_id"], "token": u["token"]} for u in units]
            if mode == "piggyback":
                pending[i] = items  # "processed"; reported with the next lease
                return done if (units or done) else 0
            if not units:
                return 0
            if mode == "unbatched":
                u = units[0]
                await post(
                    f"/v1/leases/{u['unit_id']}/complete", {"worker_id": wid, "token": u["token"]}
                )
                return 1
            result = await post("/v1/leases/complete", {"worker_id": wid, "items": items})
            return sum(r["state"] == "done" for r in result["results"])

        return await _drive(workers, warmup_s, seconds, cycle)


def start_coordinator(dsn: str, processes: int) -> tuple[subprocess.Popen[str], str]:
    env = {
        **database.env_with_database(dsn),
        # The same number of database connections in total as the SQL loop gets.
        "SOUNDFLEET_COORDINATOR_DB_POOL_SIZE": str(max(1, POOL_SIZE // processes)),
        "SOUNDFLEET_LOG_LEVEL": "warning",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "soundfleet.cli",
            "coordinator",
            "--port",
            "0",
            "--processes",
            str(processes),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("coordinator listening on "):
            return proc, line.split()[-1]
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError("the coordinator did not start")


async def _make_key(dsn: str) -> str:
    key, digest, prefix = new_key()
    async with database.connection(dsn) as conn:
        await q.create_key(conn, "bench", "worker", digest, prefix)
    return key


async def _clear(dsn: str) -> None:
    async with database.connection(dsn) as conn:
        await conn.execute("TRUNCATE work_units, jobs, workers CASCADE")
        await conn.execute("VACUUM ANALYZE work_units")


def run(
    dsn: str,
    workers: int,
    batch: int,
    seconds: float,
    warmup_s: float,
    units: int,
    processes: int,
    rounds: int,
) -> dict[str, Any]:
    """Every phase on the migrated database ``dsn``, alternating order over ``rounds``.

    The machine is shared and its load drifts, so the SQL and API phases are interleaved
    (forward, then backward) and each mode's figure is the median of its rounds.
    """
    key = asyncio.run(_make_key(dsn))
    proc, url = start_coordinator(dsn, processes)
    modes = ("sql", "two_calls", "piggyback")
    figures: dict[str, list[float]] = {m: [] for m in (*modes, "unbatched")}
    try:
        for r in range(rounds):
            for mode in modes if r % 2 == 0 else tuple(reversed(modes)):
                asyncio.run(_clear(dsn))
                asyncio.run(seed_units(dsn, units))
                if mode == "sql":
                    rate = uvloop.run(sql_phase(dsn, workers, batch, warmup_s, seconds))
                else:
                    rate = uvloop.run(api_phase(url, key, workers, batch, warmup_s, seconds, mode))
                figures[mode].append(rate)
        asyncio.run(_clear(dsn))
        asyncio.run(seed_units(dsn, units))
        figures["unbatched"].append(
            uvloop.run(api_phase(url, key, workers, batch, warmup_s, seconds, "unbatched"))
        )
    finally:
        proc.terminate()
        proc.wait(30)
    med = {m: statistics.median(v) for m, v in figures.items()}
    best = max(med["two_calls"], med["piggyback"])
    sql = med["sql"]
    return {
        "workers": workers,
        "batch": batch,
        "seconds": seconds,
        "rounds": rounds,
        "coordinator_processes": processes,
        "db_connections": POOL_SIZE,
        "sql_units_per_s": round(sql),
        "api_units_per_s": round(best),
        "api_ratio_to_sql": round(best / sql, 3) if sql else None,
        "api_two_calls_units_per_s": round(med["two_calls"]),
        "api_piggyback_units_per_s": round(med["piggyback"]),
        "api_unbatched_units_per_s": round(med["unbatched"]),
        "per_round": {m: [round(x) for x in v] for m, v in figures.items()},
        "target_api_units_per_s": 2000,
        "target_ratio": 0.5,
        "meets_targets": best >= 2000 and sql > 0 and best / sql >= 0.5,
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    """Run the benchmark on a scratch database and print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64, help="units per lease request")
    parser.add_argument("--seconds", type=float, default=8.0, help="timed window per phase")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per mode")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--units", type=int, default=120_000, help="units queued per phase")
    parser.add_argument(
        "--processes", type=int, default=2, help="coordinator server processes (one per core)"
    )
    args = parser.parse_args()
    settings = Settings()
    target = database.resolve(settings)
    dsn = fresh_database(target.dsn, "sf_bench_leasing")
    try:
        migrate_target(database.DatabaseTarget(dsn, embedded=target.embedded))
        result = run(
            dsn,
            args.workers,
            args.batch,
            args.seconds,
            args.warmup,
            args.units,
            args.processes,
            args.rounds,
        )
        result["server"] = "embedded" if target.embedded else "DATABASE_URL"
        print(json.dumps(result))
    finally:
        drop_database(target.dsn, dsn)


if __name__ == "__main__":
    main()
