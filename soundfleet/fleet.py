"""A whole fleet on this machine: simulator, coordinator and workers as child processes.

Used by ``soundfleet demo`` and by the benchmarks (sweep, soak, chaos, peers): every
service is a real process on a free loopback port, talking to a real PostgreSQL.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from runtime import database, processes
from schemas.errors import SoundfleetError


@dataclass(frozen=True)
class FleetSpec:
    """What to start."""

    seed: int = 7
    users: int = 20_000
    workers: int = 2
    concurrency: int = 64
    time_scale: float | None = None
    simulator_args: tuple[str, ...] = ()
    coordinator_env: tuple[tuple[str, str], ...] = (
        # The simulator is ours: the politeness budget only needs to bound the fleet.
        ("SOUNDFLEET_COORDINATOR_BUDGET_RPS", "50000"),
        ("SOUNDFLEET_COORDINATOR_LEASE_S", "30"),
    )
    worker_args: tuple[str, ...] = ()
    scorers: int = 0


@dataclass
class Fleet:
    """The running children and how to reach them."""

    dsn: str
    spec: FleetSpec
    log_dir: Path
    simulator: processes.Service
    coordinator: processes.Service
    worker_key: str
    researcher_key: str
    workers: list[processes.Service] = field(default_factory=list)
    scorers: list[processes.Service] = field(default_factory=list)
    _starts: int = 0

    def services(self) -> list[processes.Service]:
        """Stop order: workers first, then the coordinator, then the platform."""
        return [*self.workers, *self.scorers, self.coordinator, self.simulator]

    def stop(self, grace_s: float = 15.0) -> None:
        """Stop every child, workers first."""
        processes.stop_all(self.services(), grace_s=grace_s)

    def start_worker(self) -> processes.Service:
        """Start one more worker process."""
        assert self.simulator.url is not None and self.coordinator.url is not None
        self._starts += 1
        worker = processes.start(
            f"worker-{self._starts}",
            processes.soundfleet_argv(
                "worker",
                "--coordinator",
                self.coordinator.url,
                "--key",
                self.worker_key,
                "--concurrency",
                str(self.spec.concurrency),
                "--api-base",
                f"{self.simulator.url}/api",
                "--web-base",
                self.simulator.url,
                *self.spec.worker_args,
            ),
            log_dir=self.log_dir,
            env=database.env_with_database(self.dsn),
            wait_ready=False,
        )
        self.workers.append(worker)
        return worker

    def start_scorer(self) -> processes.Service:
        """Start one scoring worker (it leases ``score`` units only)."""
        assert self.coordinator.url is not None
        scorer = processes.start(
            f"scorer-{len(self.scorers) + 1}",
            processes.soundfleet_argv(
                "scorer", "--coordinator", self.coordinator.url, "--key", self.worker_key
            ),
            log_dir=self.log_dir,
            env=database.env_with_database(self.dsn),
            wait_ready=False,
        )
        self.scorers.append(scorer)
        return scorer

    def replace_worker(self, old: processes.Service) -> processes.Service:
        """Start a worker in place of ``old`` (which must have stopped)."""
        self.workers.remove(old)
        return self.start_worker()

    def restart_coordinator(self, port: int) -> None:
        """Stop the coordinator and start it again on the same port (workers keep its URL)."""
        processes.stop(self.coordinator, grace_s=10)
        self.coordinator = _start_coordinator(
            self.spec, self.dsn, self.log_dir, f"{self.simulator.url}/api", port
        )


def scratch_database(admin_dsn: str, name: str) -> str:
    """Drop and create database ``name`` on the server of ``admin_dsn``; its DSN."""

    async def create() -> None:
        async with database.connection(admin_dsn) as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')

    asyncio.run(create())
    return make_url(admin_dsn).set(database=name).render_as_string(hide_password=False)


def fresh_database(admin_dsn: str, prefix: str) -> str:
    """Create a database named ``prefix`` and a random suffix (no other run has it)."""
    return scratch_database(admin_dsn, f"{prefix}_{uuid.uuid4().hex[:8]}")


def drop_database(admin_dsn: str, dsn: str) -> None:
    """Drop the database ``dsn`` names."""

    async def drop() -> None:
        async with database.connection(admin_dsn) as conn:
            name = make_url(dsn).database
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    asyncio.run(drop())


def create_key(dsn: str, role: str, name: str) -> str:
    """Create an API key with ``soundfleet keys create``; returns the key."""
    proc = subprocess.run(
        processes.soundfleet_argv("keys", "create", "--role", role, "--name", name),
        env=database.env_with_database(dsn),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        raise SoundfleetError(f"creating a {role} key failed: {proc.stderr.strip()}")
    return proc.stdout.strip().splitlines()[-1].split()[-1]


def _start_coordinator(
    spec: FleetSpec, dsn: str, log_dir: Path, api_base: str, port: int = 0
) -> processes.Service:
    # The platform is our simulator: its politeness defaults, not the real host's.
    env = {
        **database.env_with_database(dsn),
        "SOUNDFLEET_COORDINATOR_PLATFORM_API_BASE": api_base,
        **dict(spec.coordinator_env),
    }
    return processes.start(
        "coordinator",
        processes.soundfleet_argv("coordinator", "--port", str(port)),
        log_dir=log_dir,
        env=env,
    )


def simulator_argv(spec: FleetSpec, extra: Sequence[str] = ()) -> list[str]:
    """The simulator's command line for ``spec``."""
    argv = ["simulator", "--port", "0", "--seed", str(spec.seed), "--users", str(spec.users)]
    if spec.time_scale is not None:
        argv += ["--time-scale", str(spec.time_scale)]
    return processes.soundfleet_argv(*argv, *spec.simulator_args, *extra)


def start_fleet(dsn: str, spec: FleetSpec, log_dir: Path) -> Fleet:
    """Start simulator, coordinator and ``spec.workers`` workers on a migrated ``dsn``.

    On failure, whatever started is stopped before the error propagates.
    """
    started: list[processes.Service] = []
    try:
        sim = processes.start(
            "simulator", simulator_argv(spec), log_dir=log_dir, env=database.env_with_database(dsn)
        )
        started.append(sim)
        coord = _start_coordinator(spec, dsn, log_dir, f"{sim.url}/api")
        started.append(coord)
        fleet = Fleet(
            dsn=dsn,
            spec=spec,
            log_dir=log_dir,
            simulator=sim,
            coordinator=coord,
            worker_key=create_key(dsn, "worker", "fleet-workers"),
            researcher_key=create_key(dsn, "researcher", "fleet-researcher"),
        )
        for _ in range(spec.workers):
            started.append(fleet.start_worker())
        for _ in range(spec.scorers):
            started.append(fleet.start_scorer())
        return fleet
    except BaseException:
        processes.stop_all(list(reversed(started)), grace_s=5)
        raise
