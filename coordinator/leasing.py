"""Leasing: claims (with long-poll), heartbeats, completion with expansion, failures and
releases, every call fenced by the unit's attempt token.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import asyncpg
import structlog

from coordinator import expand
from coordinator import queries as q
from coordinator.fleet import FleetService
from coordinator.metrics import Metrics
from schemas.coordinator import CoordinatorSettings
from schemas.errors import ConflictError, NotFoundError
from schemas.jobs import NetworkSpec
from schemas.work import (
    CRAWL_KINDS,
    BatchCompleteRequest,
    CompleteItem,
    CompleteRequest,
    FailRequest,
    HeartbeatRequest,
    HeartbeatResponse,
    LeaseRequest,
    LeaseResponse,
    ReleaseRequest,
    TimelineSpec,
    UnitStateResponse,
)

log = structlog.get_logger("coordinator")


class LeasingService(FleetService):
    """Work units handed out as leases and their outcomes."""

    def __init__(self, pool: asyncpg.Pool, settings: CoordinatorSettings, metrics: Metrics) -> None:
        super().__init__(pool, settings, metrics)
        self._running: set[int] = set()

    async def lease(self, req: LeaseRequest) -> LeaseResponse:
        """Claim up to ``max_units`` units of the requested kinds."""
        return LeaseResponse.model_validate(await self.lease_payload(req))

    async def lease_payload(self, req: LeaseRequest) -> dict[str, Any]:
        """:meth:`lease` as the JSON-ready dict of a :class:`LeaseResponse`.

        The HTTP handler serializes this directly: building one pydantic model per
        leased unit was the largest share of the coordinator's CPU per unit. With
        ``wait_s`` a call that finds nothing waits for a work notification (or the end
        of the wait) and claims again, so an idle worker picks up a new job at once
        instead of at its next poll.
        """
        payload = await self._lease_once(req)
        wait = min(req.wait_s, self.settings.lease_wait_max_s)
        if payload["units"] or wait <= 0:
            return payload
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        again = req.model_copy(update={"complete": []})  # completions count once
        while not self._closing:
            left = deadline - loop.time()
            if left <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._work_arrived.wait(), left)
            if self._closing:
                break
            # Woken or timed out, claim again: an expired lease or a retry coming due
            # sends no notification, so the end of the wait is a claim too.
            claimed = await self._lease_once(again)
            claimed["completed"] = payload["completed"]
            payload = claimed
            if payload["units"]:
                break
        return payload

    async def _lease_once(self, req: LeaseRequest) -> dict[str, Any]:
        completed: list[dict[str, Any]] = []
        async with self.pool.acquire() as conn:
            await self._touch_worker(conn, req.worker_id, req.kinds, req.hostname, req.pid)
            if req.complete:
                completed = await self._complete_items(conn, req.worker_id, req.complete)
            advice = await self.advice(conn, req.worker_id)
            kinds: Sequence[str] = req.kinds
            if advice.paused_until is not None:
                # The platform said Retry-After: hand out no crawl work until then (its
                # leases would only run out while the worker waits); scoring goes on.
                kinds = [k for k in req.kinds if k not in CRAWL_KINDS]
            started = time.perf_counter()
            rows = (
                await q.claim(conn, req.worker_id, kinds, req.max_units, self.settings.lease_s)
                if kinds
                else []
            )
            self.metrics.lease_latency.observe(time.perf_counter() - started)
            self.metrics.claim_calls.inc()
            # A job turns `running` once; remembering which ones we already moved
            # spares an UPDATE per claim (a stale memory only costs a no-op UPDATE).
            starting = {r.job_id for r in rows if r.state == "leased"} - self._running
            if starting:
                await q.mark_jobs_running(conn, sorted(starting))
                if len(self._running) > 100_000:
                    self._running.clear()
                self._running |= starting
            closed = [r.job_id for r in rows if r.state != "leased"]
            if closed:
                for r in rows:
                    if r.state != "leased":
                        log.warning(
                            "unit_closed_on_expiry",
                            unit_id=r.unit_id,
                            job_id=r.job_id,
                            state=r.state,
                        )
                await q.finish_jobs(conn, closed)
            units = [
                {
                    "unit_id": r.unit_id,
                    "job_id": r.job_id,
                    "kind": r.kind,
                    "payload": r.payload,
                    "token": r.token,
                    "cursor": r.cursor,
                    "lease_expires_at": r.lease_expires_at.isoformat(),
                }
                for r in rows
                if r.state == "leased"
            ]
            for kind, n in Counter(u["kind"] for u in units).items():
                self.metrics.claims.labels(kind).inc(n)
            if any(u["kind"] in CRAWL_KINDS for u in units):
                # The share follows the units held, these ones included.
                self._advice = None
                advice = await self.advice(conn, req.worker_id)
        return {"units": units, "fleet": advice.model_dump(mode="json"), "completed": completed}

    async def _refusal(self, conn: asyncpg.Connection, unit_id: int, token: int) -> Exception:
        self.metrics.completions.labels("stale").inc()
        row = await q.unit_state(conn, unit_id)
        if row is None:
            return NotFoundError(f"unit {unit_id} does not exist")
        return ConflictError(
            f"unit {unit_id}: token {token} is not the current lease "
            f"(unit is {row['state']} at token {row['attempt']}); drop the unit"
        )

    async def heartbeat(self, unit_id: int, req: HeartbeatRequest) -> HeartbeatResponse:
        """Extend a lease and checkpoint its cursor; 409 if the lease moved on."""
        async with self.pool.acquire() as conn:
            await self._touch_worker(conn, req.worker_id)
            row = await q.heartbeat(
                conn, unit_id, req.token, req.worker_id, req.cursor, self.settings.lease_s, req.rows
            )
            if row is None:
                raise await self._refusal(conn, unit_id, req.token)
            advice = await self.advice(conn, req.worker_id)
        return HeartbeatResponse(
            lease_expires_at=row["lease_expires_at"], cancel=bool(row["cancel"]), fleet=advice
        )

    async def complete(self, unit_id: int, req: CompleteRequest) -> UnitStateResponse:
        """Complete one unit (and queue what it discovered); 409 if the lease moved on."""
        item = CompleteItem(
            unit_id=unit_id,
            token=req.token,
            rows=req.rows,
            discovered_user_ids=req.discovered_user_ids,
            discovered_track_ids=req.discovered_track_ids,
        )
        async with self.pool.acquire() as conn:
            done = await self._complete(conn, req.worker_id, [item])
            if not done:
                raise await self._refusal(conn, unit_id, req.token)
        return UnitStateResponse(unit_id=unit_id, state="done")

    async def complete_batch(self, req: BatchCompleteRequest) -> list[UnitStateResponse]:
        """Complete many units in one transaction; stale items are reported, not raised."""
        outcomes = await self.complete_batch_payload(req)
        return [UnitStateResponse.model_validate(o) for o in outcomes]

    async def complete_batch_payload(self, req: BatchCompleteRequest) -> list[dict[str, Any]]:
        """:meth:`complete_batch` as JSON-ready :class:`UnitStateResponse` dicts."""
        async with self.pool.acquire() as conn:
            return await self._complete_items(conn, req.worker_id, req.items)

    async def _complete_items(
        self, conn: asyncpg.Connection, worker_id: str, items: Sequence[CompleteItem]
    ) -> list[dict[str, Any]]:
        done = await self._complete(conn, worker_id, items)
        stale = len(items) - len(done)
        if stale:
            self.metrics.completions.labels("stale").inc(stale)
        return [
            {"unit_id": i.unit_id, "state": "done" if i.unit_id in done else "stale"} for i in items
        ]

    async def _complete(
        self, conn: asyncpg.Connection, worker_id: str, items: Sequence[CompleteItem]
    ) -> set[int]:
        by_id = {i.unit_id: i for i in items}
        ids = [i.unit_id for i in items]
        tokens = [i.token for i in items]
        rows_landed = [i.rows for i in items]
        if any(i.discovered_user_ids or i.discovered_track_ids for i in items):
            # Discoveries are queued in the completion's transaction: never lost.
            async with conn.transaction():
                rows = await q.complete(conn, worker_id, ids, tokens, rows_landed)
                # Job rows are locked in id order, so concurrent batches cannot deadlock.
                for row in sorted(rows, key=lambda r: (r["job_id"], r["id"])):
                    item = by_id[row["id"]]
                    if item.discovered_user_ids or item.discovered_track_ids:
                        await self._spawn(conn, row, item)
        else:
            # One statement is atomic on its own; skipping BEGIN/COMMIT saves two trips.
            rows = await q.complete_lean(conn, worker_id, ids, tokens, rows_landed)
        await self._touch_worker(conn, worker_id)
        if rows:
            self.metrics.completions.labels("done").inc(len(rows))
            # After commit: see the module docstring of queries (FINISH_JOBS).
            await q.finish_jobs(conn, [r["job_id"] for r in rows])
        return {r["id"] for r in rows}

    async def _spawn(
        self, conn: asyncpg.Connection, row: asyncpg.Record, item: CompleteItem
    ) -> None:
        """Queue the units a completed unit discovered (same transaction as its completion)."""
        payload: dict[str, Any] = json.loads(row["payload"])
        job_id: int = row["job_id"]
        if row["kind"] == "follow_list" and payload.get("expand") and item.discovered_user_ids:
            job = await q.lock_job(conn, job_id)
            if job is None or job["state"] == "cancelled" or job["kind"] != "network":
                return
            spec = NetworkSpec.model_validate_json(job["spec"])
            dirs = expand.directions(spec.direction)
            users_so_far = await q.count_units(conn, job_id) // len(dirs)
            room = spec.max_users - users_so_far
            if room <= 0:
                return
            fresh = await q.new_users(
                conn, job_id, _valid_ids(item.discovered_user_ids), f"fl:{dirs[0]}:", room
            )
            depth = int(payload["depth"]) + 1
            units = expand.follow_lists(fresh, spec.direction, depth, spec.depth)
            await q.insert_units(conn, job_id, units, row["priority"], row["max_attempts"])
        elif row["kind"] == "user_tracks" and item.discovered_track_ids:
            chain = payload.get("then_timelines")
            if not chain:
                return
            job = await q.lock_job(conn, job_id)
            if job is None or job["state"] == "cancelled":
                return
            timeline = TimelineSpec.model_validate(chain)
            units = expand.track_lists(
                _valid_ids(item.discovered_track_ids),
                timeline.lists,
                timeline.timestamps,
                depth=1,
            )
            await q.insert_units(conn, job_id, units, row["priority"], row["max_attempts"])

    async def fail(self, unit_id: int, req: FailRequest) -> UnitStateResponse:
        """Record a failure: retried later with backoff, or `failed`/`dead`."""
        async with self.pool.acquire() as conn:
            row = await q.fail(
                conn,
                unit_id,
                req.token,
                req.worker_id,
                req.error,
                req.retryable,
                self.settings.backoff_base_s,
                self.settings.backoff_max_s,
                req.cursor,
                req.rows,
            )
            if row is None:
                raise await self._refusal(conn, unit_id, req.token)
            self.metrics.completions.labels("failed").inc()
            if row["state"] != "queued":
                await q.finish_jobs(conn, [row["job_id"]])
        log.info("unit_failed", unit_id=unit_id, state=row["state"], worker_id=req.worker_id)
        return UnitStateResponse(unit_id=unit_id, state=row["state"])

    async def release(self, unit_id: int, req: ReleaseRequest) -> UnitStateResponse:
        """Give a unit back for immediate re-claim, keeping its cursor."""
        async with self.pool.acquire() as conn:
            row = await q.release(conn, unit_id, req.token, req.worker_id, req.cursor, req.rows)
            if row is None:
                raise await self._refusal(conn, unit_id, req.token)
        self.metrics.completions.labels("released").inc()
        return UnitStateResponse(unit_id=unit_id, state=row["state"])


_MAX_ID = 2**53


def _valid_ids(ids: Sequence[int]) -> list[int]:
    """Discovered ids a unit payload can carry (a buggy worker cannot poison the queue)."""
    return [i for i in ids if 1 <= i <= _MAX_ID]
