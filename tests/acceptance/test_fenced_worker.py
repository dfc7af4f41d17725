"""A worker frozen past its lease wakes with rows in hand: its landing is refused.

Real processes (simulator, coordinator, worker). Mid-unit, the test holds the unit's
row (so the worker's heartbeats cannot extend its lease, as in a partition), freezes the
worker (SIGSTOP) past its lease and wakes it (SIGCONT): when it lands its batch, the
fence must refuse it (``rows_fenced``), and the unit, leased again, must still land
the truth.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import numpy as np
import pytest

from runtime import database, processes
from runtime.client import CoordinatorClient
from simulator.world import World
from soundfleet.fleet import FleetSpec, start_fleet

USERS = 400


async def _wait_for(conn: asyncpg.Connection, sql: str, timeout_s: float = 60.0) -> asyncpg.Record:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        row = await conn.fetchrow(sql)
        if row is not None:
            return row
        await asyncio.sleep(0.05)
    sessions = await conn.fetch(
        "SELECT state, wait_event_type, left(query, 90) AS q FROM pg_stat_activity "
        "WHERE datname = current_database()"
    )
    raise AssertionError(f"timed out waiting for: {sql}; sessions: {[tuple(r) for r in sessions]}")


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_a_frozen_worker_cannot_land_past_its_lease(db_dsn: str, tmp_path: Path) -> None:
    spec = FleetSpec(
        seed=3,
        users=USERS,
        workers=1,
        time_scale=0.0,
        # Every request takes two seconds: the unit is mid-batch when its row is held.
        simulator_args=("--fault-slow", "1.0:2000"),
        coordinator_env=(
            ("SOUNDFLEET_COORDINATOR_BUDGET_RPS", "50000"),
            ("SOUNDFLEET_COORDINATOR_LEASE_S", "3"),
            ("SOUNDFLEET_COORDINATOR_BACKOFF_BASE_S", "0.2"),
        ),
        worker_args=("--units", "1", "--no-web-profiles"),
    )
    fleet = await asyncio.to_thread(start_fleet, db_dsn, spec, tmp_path)
    worker = fleet.workers[0]
    try:
        assert fleet.coordinator.url is not None
        async with CoordinatorClient(fleet.coordinator.url, fleet.researcher_key) as client:
            job = await client.submit(
                "user_sweep", {"id_from": 1, "id_to": USERS + 1, "chunk": 100}
            )
            conn = await database.connect(db_dsn)
            try:
                unit = await _wait_for(
                    conn, "SELECT id, attempt FROM work_units WHERE state = 'leased'"
                )
                # Hold the unit's row, as a partition would: the worker's heartbeats
                # queue behind it at the coordinator and cannot extend the lease.
                holder = conn.transaction()
                await holder.start()
                await conn.execute("SELECT 1 FROM work_units WHERE id = $1 FOR UPDATE", unit["id"])
                processes.freeze(worker)
                await asyncio.sleep(4.0)  # past the 3 s lease, the worker stopped mid-unit
                processes.thaw(worker)
                log_path = tmp_path / "worker-1.log"
                deadline = time.monotonic() + 60
                while '"rows_fenced"' not in log_path.read_text():
                    assert time.monotonic() < deadline, "the stale batch was never refused"
                    await asyncio.sleep(0.2)
                await holder.commit()
            finally:
                await conn.close()
            deadline = time.monotonic() + 120
            while (await client.job(job.id)).state not in ("done", "failed"):
                assert time.monotonic() < deadline, "the sweep did not finish"
                await asyncio.sleep(0.3)
            assert (await client.job(job.id)).state == "done"
    finally:
        processes.thaw(worker)
        await asyncio.to_thread(fleet.stop)
    log = (tmp_path / "worker-1.log").read_text()
    assert '"rows_fenced"' in log, "the stale batch was not refused"
    world = World.generate(3, USERS)
    ids = np.arange(1, USERS + 1)
    live = {int(i) for i in ids[~world.is_gone(ids)]}
    conn = await database.connect(db_dsn)
    try:
        landed = {r[0] for r in await conn.fetch("SELECT id FROM users")}
        attempts = await conn.fetchval("SELECT max(attempt) FROM work_units")
    finally:
        await conn.close()
    assert landed == live
    assert attempts >= 2  # leased again after the stale attempt was fenced off
