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
from crawler.handlers import HANDLERS, UnitContext, UnitResult
from crawler.worker import Worker
from schemas.work import FleetAdvice, HeartbeatResponse, Lease, LeaseResponse


class ScriptedCoordinator:
    """Hands out ``units`` leases once, then none; counts every lease call."""

    def __init__(self, units: int) -> None:
        self.pending = units
        self.lease_calls = 0
        self.completed: list[int] = []

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

    async def heartbeat(self, *_args: Any) -> HeartbeatResponse:
        expires = datetime.now(UTC) + timedelta(seconds=60)
        return HeartbeatResponse(lease_expires_at=expires, fleet=self._fleet())

    async def complete(self, unit_id: int, *_args: Any) -> None:
        self.completed.append(unit_id)

    async def throttled(self, retry_after_s: float | None) -> None:
        return None

    async def blocked(self, reason: str) -> float:
        return 60.0


async def test_no_busy_leasing_while_the_last_units_run(
    db_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    coordinator = ScriptedCoordinator(units=2)
    monkeypatch.setattr(worker_module, "CoordinatorClient", coordinator)

    async def handler(ctx: UnitContext) -> UnitResult:
        # One unit ends at once, the other runs on: the window the bug spun in.
        await asyncio.sleep(0.0 if ctx.lease.unit_id == 1 else 2.0)
        return UnitResult(0)

    monkeypatch.setitem(HANDLERS, "user_range", handler)
    settings = WorkerSettings(
        api_key="k",
        kinds=("user_range",),
        unit_slots=4,
        idle_poll_s=1.0,
        heartbeat_s=30.0,
        api_base="http://127.0.0.1:9/api",
        web_base="http://127.0.0.1:9",
    )
    code = await Worker(settings, db_dsn).run(stop_after_idle=0.5)
    assert code == 0
    assert sorted(coordinator.completed) == [1, 2]
    # 2 s of the second unit at one lease per second plus one per completion and the
    # idle exit: a handful, where a spinning loop makes thousands.
    assert coordinator.lease_calls <= 8, coordinator.lease_calls
