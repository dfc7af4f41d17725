"""Worker processes in a real fleet: simulator, coordinator and workers as subprocesses.

Crash safety (kill -9 mid-unit, then another worker re-leases and resumes from the
checkpointed cursor), SIGTERM drain (exit 0, units released with their cursor) and
client_id rotation under a coordinator — each must end with exactly the rows the
simulator's truth implies.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import numpy as np
import pytest

from runtime import processes
from runtime.client import CoordinatorClient
from simulator.world import World
from soundfleet.fleet import create_key
from tests.integration.test_crawler_handlers import expected_list, user_created

SEED = 11
USERS = 1500  # its most reposted track has ~200 reposters: a unit of ~200 pages
_WORLD: list[World] = []


def world() -> World:
    if not _WORLD:
        _WORLD.append(World.generate(seed=SEED, users=USERS))
    return _WORLD[0]


@dataclass
class Fleet:
    sim: processes.Service
    coordinator: processes.Service
    worker_key: str
    researcher_key: str
    env: dict[str, str]
    log_dir: Path

    def worker(self, name: str, *extra: str) -> processes.Service:
        assert self.sim.url and self.coordinator.url
        argv = processes.soundfleet_argv(
            "worker",
            "--coordinator", self.coordinator.url,
            "--key", self.worker_key,
            "--api-base", self.sim.url + "/api",
            "--web-base", self.sim.url,
            "--concurrency", "4",
            "--units", "2",
            *extra,
        )  # fmt: skip
        return processes.start(name, argv, log_dir=self.log_dir, env=self.env, wait_ready=False)


def _set_clock(sim_url: str, now_us: int) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_us // 1_000_000))
    req = urllib.request.Request(
        sim_url + "/_admin/clock",
        data=json.dumps({"now": stamp}).encode(),
        headers={"Authorization": "Bearer t", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200


@pytest.fixture
def fleet(db_dsn: str, tmp_path: Path) -> Iterator[Fleet]:
    env = {
        **os.environ,
        "DATABASE_URL": db_dsn,
        "SOUNDFLEET_COORDINATOR_LEASE_S": "3",
        "SOUNDFLEET_COORDINATOR_BUDGET_RPS": "10000",
        # A simulated platform: rediscoveries as often as the rotations need.
        "SOUNDFLEET_COORDINATOR_PLATFORM_API_BASE": "http://127.0.0.1/api",
        "SOUNDFLEET_COORDINATOR_BACKOFF_BASE_S": "0.2",
        "SOUNDFLEET_FLUSH_ROWS": "6",
        "SOUNDFLEET_LOG_FORMAT": "json",
    }
    services: list[processes.Service] = []
    sim = processes.start(
        "simulator",
        processes.soundfleet_argv(
            "simulator",
            "--port",
            "0",
            "--seed",
            str(SEED),
            "--users",
            str(USERS),
            "--admin-token",
            "t",
            "--fault-slow",
            "1.0:40",
            "--rotate-client-id",
            "4",
            "--client-id-grace",
            "0",
        ),
        log_dir=tmp_path,
        env=env,
    )
    services.append(sim)
    try:
        assert sim.url
        _set_clock(sim.url, world().end_us)
        coordinator = processes.start(
            "coordinator",
            processes.soundfleet_argv("coordinator", "--port", "0"),
            log_dir=tmp_path,
            env=env,
        )
        services.insert(0, coordinator)
        yield Fleet(
            sim,
            coordinator,
            create_key(env["DATABASE_URL"], "worker", "test-worker"),
            create_key(env["DATABASE_URL"], "researcher", "test-researcher"),
            env,
            tmp_path,
        )
    finally:
        processes.stop_all(services, grace_s=5)


async def _submit_timeline(fleet: Fleet, track: int) -> int:
    assert fleet.coordinator.url
    async with CoordinatorClient(fleet.coordinator.url, fleet.researcher_key) as client:
        job = await client.submit(
            "track_timelines", {"track_ids": [track], "lists": ["reposters"], "timestamps": "exact"}
        )
    return job.id


async def _wait_rows(db: asyncpg.Connection, sql: str, at_least: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = int(await db.fetchval(sql))
        if n >= at_least:
            return n
        await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {at_least} rows after {timeout}s: {sql}")


async def _wait_job(fleet: Fleet, job_id: int, timeout: float) -> str:
    assert fleet.coordinator.url
    deadline = time.monotonic() + timeout
    async with CoordinatorClient(fleet.coordinator.url, fleet.researcher_key) as client:
        while time.monotonic() < deadline:
            job = await client.job(job_id)
            if job.state in ("done", "failed", "cancelled"):
                return job.state
            await asyncio.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout}s")


def _truth(track: int) -> set[tuple[int, object, str]]:
    w = world()
    ev = w.reposts
    mask = ev.dst == track
    return expected_list(ev.src[mask], ev.t_us[mask], 1, user_created(w))


def _top_track() -> int:
    return int(np.argmax(np.bincount(world().reposts.dst)))


REPOSTS = "SELECT user_id, event_time, time_source FROM reposts"


async def test_kill_9_mid_unit_then_release_lands_identical_rows(
    fleet: Fleet, db: asyncpg.Connection
) -> None:
    track = _top_track()
    job = await _submit_timeline(fleet, track)
    first = fleet.worker("worker-1")
    try:
        await _wait_rows(db, "SELECT count(*) FROM reposts", 8, timeout=60)
        # a heartbeat has checkpointed a resume point
        await _wait_rows(db, "SELECT count(cursor) FROM work_units", 1, timeout=10)
        processes.kill(first)  # SIGKILL: no drain, no release
        assert await db.fetchval("SELECT state FROM work_units WHERE job_id = $1", job) == "leased"
        cursor = await db.fetchval("SELECT cursor FROM work_units WHERE job_id = $1", job)
        assert cursor and "offset=" in cursor
        second = fleet.worker("worker-2", "--exit-when-idle", "3")
        assert await _wait_job(fleet, job, timeout=120) == "done"
        assert processes.stop(second, grace_s=15) == 0
    finally:
        processes.stop(first, grace_s=1)
    unit = await db.fetchrow("SELECT attempt, state FROM work_units WHERE job_id = $1", job)
    assert unit["state"] == "done" and unit["attempt"] >= 2
    assert {tuple(r) for r in await db.fetch(REPOSTS)} == _truth(track)


async def test_sigterm_drains_releases_with_cursor_and_exits_0(
    fleet: Fleet, db: asyncpg.Connection
) -> None:
    track = _top_track()
    job = await _submit_timeline(fleet, track)
    first = fleet.worker("worker-1", "--grace", "10", "--metrics-port", "0")
    await _wait_rows(db, "SELECT count(*) FROM reposts", 8, timeout=60)
    metrics = _scrape_metrics(fleet.log_dir / "worker-1.log")
    assert 'soundfleet_worker_rows_landed_total{table="reposts"}' in metrics
    assert 'soundfleet_worker_requests_total{status="200"}' in metrics
    first.proc.send_signal(signal.SIGTERM)  # the worker itself, as Kubernetes does
    assert first.proc.wait(20) == 0
    unit = await db.fetchrow("SELECT state, cursor FROM work_units WHERE job_id = $1", job)
    assert unit["state"] == "queued"
    assert unit["cursor"] and "offset=" in unit["cursor"]
    landed = await db.fetchval("SELECT count(*) FROM reposts")
    assert 0 < landed < len(_truth(track))
    log = (fleet.log_dir / "worker-1.log").read_text()
    assert "unit_released" in log and "worker_stopped" in log
    assert fleet.worker_key not in log  # secrets only ever as a short prefix
    second = fleet.worker("worker-2", "--exit-when-idle", "3")
    try:
        assert await _wait_job(fleet, job, timeout=120) == "done"
        assert processes.stop(second, grace_s=15) == 0
    finally:
        processes.stop(second, grace_s=1)
    assert {tuple(r) for r in await db.fetch(REPOSTS)} == _truth(track)
    _check_probe(fleet)
    # The simulator rotated its client_id every 4 s with no grace: the fleet rediscovered.
    assert (
        '"client_id_reported"' in log
        or "client_id_reported" in (fleet.log_dir / "worker-2.log").read_text()
    )


def _scrape_metrics(log: Path) -> str:
    """GET the worker's /metrics, on the port its ``metrics_serving`` event names."""
    for line in log.read_text().splitlines():
        if '"metrics_serving"' in line:
            port = json.loads(line)["port"]
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                return str(r.read().decode())
    raise AssertionError("the worker did not log its metrics port")


def _check_probe(fleet: Fleet) -> None:
    """``soundfleet worker --check``: 0 with the fleet up, 1 (one line) without."""
    assert fleet.coordinator.url
    base = processes.soundfleet_argv("worker", "--check", "--key", fleet.worker_key)
    ok = subprocess.run(
        [*base, "--coordinator", fleet.coordinator.url],
        env=fleet.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        [*base, "--coordinator", "http://127.0.0.1:9"],
        env=fleet.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 1
    assert "unhealthy" in bad.stderr and "Traceback" not in bad.stderr
