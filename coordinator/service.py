"""The coordinator's behaviour, independent of HTTP: jobs, leases, client_ids, budget.

Every method takes validated request models and returns response models; HTTP handlers
only parse, authorize and serialize. All state is in PostgreSQL (the two small caches
here only save round-trips and expire within a second or a few), so any number of
coordinator processes can serve one fleet.

The parts live in modules of their own, one concern each (:mod:`.core`, :mod:`.keys`,
:mod:`.fleet`, :mod:`.leasing`, :mod:`.clientids`, :mod:`.jobs`, :mod:`.runs`);
:class:`Coordinator` is their facade.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg

from coordinator import queries as q
from coordinator.clientids import ClientIdService
from coordinator.jobs import JobService
from coordinator.keys import KeyService
from coordinator.leasing import LeasingService
from coordinator.metrics import Metrics
from coordinator.runs import ScoringRunService
from schemas.coordinator import CoordinatorSettings


class Coordinator(LeasingService, ClientIdService, JobService, ScoringRunService, KeyService):
    """Jobs, leasing, the client_id registry and the fleet budget on one pool."""

    def __init__(self, pool: asyncpg.Pool, settings: CoordinatorSettings, metrics: Metrics) -> None:
        super().__init__(pool, settings, metrics)
        self._gauges_lock = asyncio.Lock()
        self._gauges_until = float("-inf")

    async def revision(self) -> str | None:
        """The database's migration revision."""
        async with self.pool.acquire() as conn:
            return await q.alembic_revision(conn)

    async def refresh_gauges(self) -> None:
        """Read fleet-wide gauges from the database (at scrape time, at most once per
        ``metrics_cache_s``; concurrent scrapes share one read)."""
        async with self._gauges_lock:
            now = time.monotonic()
            if now < self._gauges_until:
                return
            await self._read_gauges()
            self._gauges_until = time.monotonic() + self.settings.metrics_cache_s

    async def _read_gauges(self) -> None:
        s = self.settings
        async with self.pool.acquire() as conn:
            rows = await q.units_by_state(conn)
            advice = await q.fleet_advice(conn, s.budget_increase_rps_per_s, s.worker_alive_s)
            head, _ = await q.fleet_view(conn, s.budget_increase_rps_per_s, s.worker_alive_s)
        self.metrics.units.clear()
        for r in rows:
            self.metrics.units.labels(r["kind"], r["state"]).set(r["n"])
        if advice is not None:
            self.metrics.workers_alive.set(advice["alive"])
            self.metrics.budget.set(float(advice["budget"]))
        if head is not None:
            self.metrics.budget_max.set(float(head["max_budget_rps"]))
            self.metrics.throttles_total.set(head["throttles"])
            since, until = head["blocked_since"], head["block_until"]
            self.metrics.blocked.set(1 if since is not None else 0)
            self.metrics.blocked_since.set(since.timestamp() if since is not None else 0)
            self.metrics.block_next_try.set(
                until.timestamp() if since is not None and until is not None else 0
            )
            self.metrics.block_level.set(head["block_level"])
