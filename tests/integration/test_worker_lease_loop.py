"""The worker's lease loop against a scripted coordinator: no busy re-leasing.

When the job has no unit left for a worker that still runs some of its own, the
worker must not ask again as fast as the coordinator answers: a lease call normally
waits at the coordinator (``wait_s``, a long-poll), and one answered empty at once (as
this scripted coordinator does, like a real one shutting down) is waited out by the
worker itself.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import crawler.worker as worker_module
from crawler.config import WorkerSettings
from crawler.errors import TransientError
from crawler.handlers import HANDLERS, UnitContext, UnitResult
from crawler.store import Batch
from crawler.worker import Worker
from schemas.work import FleetAdvice, HeartbeatResponse, Lease, LeaseResponse


class ScriptedCoordinator:
    """Hands out ``units`` leases once, then none; counts every lease call."""

    def __init__(self, units: int) -> None:
        self.pending = units
        self.lease_calls = 0
        self.completed: list[int] = []
        self.failed: list[tuple[Any, ...]] = []
        self.beats: list[tuple[int, str | None, int]] = []  # with units completed by then

    def __call__(self, *_args: Any) -> ScriptedCoordinator:
        return self  # stands in for the CoordinatorClient class

    async def __aenter__(self) -> ScriptedCoordinator:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def _fleet(self) -> FleetAdvice:
        return FleetAdvice(rate_share_rps=0, client_id="test-client-id")

    async def lease(self, kinds: tuple[str, ...], max_units: int, wait_s: float) -> LeaseResponse:
        assert wait_s == 1.0  # the worker's idle_poll_s: it asks to be held
        self.lease_calls += 1
        give = min(self.pending, max_units)
        self.pending -= give
        expires = datetime.now(UTC) + timedelta(seconds=60)
        units = [
            Lease(
                unit_id=self.pending + i + 1,
                job_id=1,
                kind="user_range",
                payload={"id_from": 1, "id_to": 2},
                token=1,
                cursor=None,
                lease_expires_at=expires,
            )
            for i in range(give)
        ]
        return LeaseResponse(units=units, fleet=self._fleet())

    async def advice(self) -> FleetAdvice:
        return self._fleet()

    async def heartbeat(
        self, unit_id: int, token: int, cursor: str | None, rows: int
    ) -> HeartbeatResponse:
        self.beats.append((unit_id, cursor, len(self.completed)))
        expires = datetime.now(UTC) + timedelta(seconds=60)
        return HeartbeatResponse(lease_expires_at=expires, fleet=self._fleet())

    async def complete(self, unit_id: int, *_args: Any) -> None:
        self.completed.append(unit_id)

    async def fail(self, unit_id: int, token: int, error: str, *args: Any) -> None:
        self.failed.append((unit_id, error, *args))

    async def throttled(self, retry_after_s: float | None) -> None:
        return None

    async def blocked(self, reason: str) -> float:
        return 60.0


async def _run(
    db_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    handler: Any,
    units: int,
    **settings: Any,
) -> ScriptedCoordinator:
    """Run a worker with ``handler`` for user_range over ``units`` scripted leases."""
    coordinator = ScriptedCoordinator(units=units)
    monkeypatch.setattr(worker_module, "CoordinatorClient", coordinator)
    monkeypatch.setitem(HANDLERS, "user_range", handler)
    config = WorkerSettings(
        api_key="k",
        kinds=("user_range",),
        api_base="http://127.0.0.1:9/api",
        web_base="http://127.0.0.1:9",
        **settings,
    )
    assert await Worker(config, db_dsn).run(stop_after_idle=0.5) == 0
    return coordinator


async def test_no_busy_leasing_while_the_last_units_run(
    db_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def handler(ctx: UnitContext) -> UnitResult:
        # One unit ends at once, the other runs on: the window the bug spun in.
        await asyncio.sleep(0.0 if ctx.lease.unit_id == 1 else 2.0)
        return UnitResult(0)

    coordinator = await _run(
        db_dsn, monkeypatch, handler, 2, unit_slots=4, idle_poll_s=1.0, heartbeat_s=30.0
    )
    assert sorted(coordinator.completed) == [1, 2]
    # 2 s of the second unit at one lease per second plus one per completion and the
    # idle exit: a handful, where a spinning loop makes thousands.
    assert coordinator.lease_calls <= 8, coordinator.lease_calls


async def test_a_failed_unit_hands_back_its_last_checkpoint(
    db_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages landed after the last heartbeat are not walked again by the retry."""

    async def handler(ctx: UnitContext) -> UnitResult:
        await ctx.land(Batch(), "http://127.0.0.1:9/api/users?cursor=page-3")
        raise TransientError("HTTP 503 from page 3, retries spent")

    # heartbeat_s: no heartbeat carries the cursor before the failure
    coordinator = await _run(db_dsn, monkeypatch, handler, 1, heartbeat_s=30.0)
    [(unit_id, error, retryable, rows, cursor)] = coordinator.failed
    assert (unit_id, retryable, rows) == (1, True, 0)
    assert "HTTP 503" in error
    assert cursor == "http://127.0.0.1:9/api/users?cursor=page-3"


async def test_a_landed_checkpoint_goes_out_before_the_next_period(
    db_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed right after a landing must not cost its successor those pages."""

    async def handler(ctx: UnitContext) -> UnitResult:
        await ctx.land(Batch(), "http://127.0.0.1:9/api/users?cursor=page-2")
        await asyncio.sleep(3.0)  # half a heartbeat period: the old loop never beat
        return UnitResult(0)

    coordinator = await _run(db_dsn, monkeypatch, handler, 1, heartbeat_s=6.0)
    assert coordinator.completed == [1]
    assert (1, "http://127.0.0.1:9/api/users?cursor=page-2", 0) in coordinator.beats
