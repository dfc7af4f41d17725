"""The fleet: live workers, each worker's share of the request budget, throttles
and bot-protection blocks.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import structlog

from coordinator import queries as q
from coordinator.auth import Principal
from coordinator.core import ServiceState
from coordinator.metrics import Metrics
from schemas.coordinator import CoordinatorSettings
from schemas.jobs import FleetView, WorkerView
from schemas.work import BlockReport, BlockState, FleetAdvice, ThrottleReport

log = structlog.get_logger("coordinator")


@dataclass
class _Advice:
    budget: float
    paused_until: datetime | None
    alive: int
    client_id: str | None
    expires: float
    held: dict[str, int]  # live crawl units per worker


def budget_share(
    budget: float, held: Mapping[str, int], worker_id: str | None, alive: int
) -> float:
    """A worker's share of the fleet budget: in proportion to the crawl units it holds.

    An equal share per live worker left the part of a worker with nothing (or little)
    to do unspent while another worked through most of a job's units. A worker that
    holds no crawl unit sends next to nothing and gets an equal share.
    """
    mine = held.get(worker_id, 0) if worker_id is not None else 0
    total = sum(held.values())
    if mine and total:
        return budget * mine / total
    return budget / max(1, alive)


class FleetService(ServiceState):
    """Workers, the budget they share, and the fleet-wide pauses."""

    def __init__(self, pool: asyncpg.Pool, settings: CoordinatorSettings, metrics: Metrics) -> None:
        super().__init__(pool, settings, metrics)
        self._advice: _Advice | None = None
        self._seen: dict[str, float] = {}

    async def _touch_worker(
        self,
        conn: asyncpg.Connection,
        worker_id: str,
        kinds: Sequence[str] = (),
        hostname: str | None = None,
        pid: int | None = None,
    ) -> None:
        # One upsert per worker every few seconds is enough for liveness; doing it on
        # every call would add a write to each lease and heartbeat.
        now = time.monotonic()
        period = min(5.0, self.settings.worker_alive_s / 3)
        last = self._seen.get(worker_id)
        if last is not None and now - last < period:
            return
        await q.upsert_worker(conn, worker_id, kinds, hostname, pid)
        if len(self._seen) > 50_000:
            cutoff = now - self.settings.worker_alive_s
            self._seen = {k: v for k, v in self._seen.items() if v > cutoff}
        self._seen[worker_id] = now

    async def advice(
        self, conn: asyncpg.Connection | None = None, worker_id: str | None = None
    ) -> FleetAdvice:
        """``worker_id``'s budget share, the fleet pause and the current client_id."""
        now = time.monotonic()
        cached = self._advice
        if cached is None or cached.expires <= now:
            if conn is None:
                async with self.pool.acquire() as own:
                    cached = await self._read_advice(own, now)
            else:
                cached = await self._read_advice(conn, now)
            self._advice = cached
        paused = cached.paused_until
        if paused is not None and paused <= datetime.now(UTC):
            paused = None
        return FleetAdvice(
            rate_share_rps=budget_share(cached.budget, cached.held, worker_id, cached.alive),
            paused_until=paused,
            client_id=cached.client_id,
        )

    async def _read_advice(self, conn: asyncpg.Connection, now: float) -> _Advice:
        s = self.settings
        row = await q.fleet_advice(conn, s.budget_increase_rps_per_s, s.worker_alive_s)
        if row is None:
            # The fleet row appears once the database is migrated after our start.
            await self.start()
            return _Advice(s.budget_rps, None, 1, None, 0.0, {})
        return _Advice(
            float(row["budget"]),
            row["paused_until"],
            int(row["alive"]),
            row["client_id"],
            now + s.fleet_cache_s,
            await q.leased_by_worker(conn),
        )

    async def fleet_advice(self, worker_id: str) -> FleetAdvice:
        """``GET /v1/fleet/advice``: the advice alone, between leases and heartbeats."""
        async with self.pool.acquire() as conn:
            await self._touch_worker(conn, worker_id)
            return await self.advice(conn, worker_id)

    async def block(self, req: BlockReport) -> BlockState:
        """A worker met the bot protection: pause the fleet (see ``queries.BLOCK``)."""
        async with self.pool.acquire() as conn:
            return await self._block(conn, req.worker_id, req.reason)

    async def _cut_budget(
        self, conn: asyncpg.Connection, retry_after_s: float | None, *, counted: bool = True
    ) -> None:
        """The AIMD decrease of the fleet budget (and a pause for ``retry_after_s``)."""
        s = self.settings
        await q.throttle(
            conn,
            s.budget_increase_rps_per_s,
            s.budget_decrease_factor,
            s.budget_min_rps,
            s.budget_decrease_window_s,
            retry_after_s,
            counted=counted,
        )

    async def _block(self, conn: asyncpg.Connection, worker_id: str, reason: str) -> BlockState:
        s = self.settings
        row = await q.block(conn, s.block_base_s, s.block_max_s, s.block_reset_s, reason)
        self._advice = None
        new = row["what"] != "same"
        if new:
            # A block is congestion too (often a burst): the budget takes the AIMD cut.
            await self._cut_budget(conn, None, counted=False)
            self.metrics.blocks.inc()
            log.warning(
                "fleet_blocked",
                worker_id=worker_id,
                reason=reason,
                level=row["block_level"],
                until=row["block_until"].isoformat(),
            )
        return BlockState(
            new=new,
            level=int(row["block_level"]),
            blocked_since=row["blocked_since"],
            block_until=row["block_until"],
            wait_s=max(0.0, float(row["wait_s"])),
        )

    async def throttle(self, req: ThrottleReport, who: Principal | None = None) -> FleetAdvice:
        """Apply a reported 429: AIMD decrease and a fleet-wide pause for Retry-After.

        A worker key's pause is cut to ``worker_pause_max_s``: one key must not be able
        to stop the whole fleet for an hour.
        """
        s = self.settings
        if req.retry_after_s is not None and (who is None or not who.is_admin):
            req = req.model_copy(
                update={"retry_after_s": min(req.retry_after_s, s.worker_pause_max_s)}
            )
        async with self.pool.acquire() as conn:
            await self._cut_budget(conn, req.retry_after_s)
            self._advice = None
            self.metrics.throttles.inc()
            advice = await self.advice(conn, req.worker_id)
        log.info(
            "fleet_throttled",
            worker_id=req.worker_id,
            retry_after_s=req.retry_after_s,
            share_rps=advice.rate_share_rps,
        )
        return advice

    async def fleet(self, who: Principal | None = None) -> FleetView:
        """The fleet's state: everything for workers and operators (``who`` None or not a
        researcher); for a researcher the politeness figures without worker internals."""
        view = await self._fleet_view()
        if who is not None and who.role == "researcher":
            return view.model_copy(update={"workers": [], "discovery_worker": None,
                                           "client_id": None})  # fmt: skip
        return view

    async def _fleet_view(self) -> FleetView:
        s = self.settings
        async with self.pool.acquire() as conn:
            head, workers = await q.fleet_view(conn, s.budget_increase_rps_per_s, s.worker_alive_s)
        return FleetView(
            budget_rps=float(head["budget"]) if head else s.budget_rps,
            max_budget_rps=float(head["max_budget_rps"]) if head else s.budget_rps,
            paused_until=head["paused_until"] if head else None,
            throttles=int(head["throttles"]) if head else 0,
            blocked=bool(head and head["blocked_since"] is not None),
            blocked_since=head["blocked_since"] if head else None,
            block_until=head["block_until"] if head else None,
            block_level=int(head["block_level"]) if head else 0,
            blocks=int(head["blocks"]) if head else 0,
            block_reason=head["block_reason"] if head else None,
            client_id=head["client_id"] if head else None,
            discovery_worker=head["discovery_worker"] if head else None,
            workers=[
                WorkerView(
                    id=w["id"],
                    hostname=w["hostname"],
                    pid=w["pid"],
                    kinds=list(w["kinds"]),
                    started_at=w["started_at"],
                    last_seen_at=w["last_seen_at"],
                    leased=w["leased"],
                )
                for w in workers
            ],
        )
