"""The coordinator's behaviour, independent of HTTP: jobs, leases, client_ids, budget.

Every method takes validated request models and returns response models; HTTP handlers
only parse, authorize and serialize. All state is in PostgreSQL (the two small caches
here only save round-trips and expire within a second or a few), so any number of
coordinator processes can serve one fleet.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog

from coordinator import expand
from coordinator import queries as q
from coordinator.auth import Principal, hash_key
from coordinator.errors import FieldsError, HttpError
from coordinator.metrics import Metrics
from schemas.coordinator import CoordinatorSettings
from schemas.errors import ConflictError, NotFoundError
from schemas.jobs import (
    FieldError,
    FleetView,
    JobList,
    JobProgress,
    JobSubmit,
    JobView,
    NetworkJob,
    NetworkSpec,
    PlayPollJob,
    ScoreJob,
    ScoringRunList,
    ScoringRunView,
    TrackTimelinesJob,
    UserSweepJob,
    UserTracksJob,
    WorkerView,
)
from schemas.work import (
    CRAWL_KINDS,
    BatchCompleteRequest,
    BlockReport,
    BlockState,
    ClientIdReport,
    ClientIdState,
    CompleteItem,
    CompleteRequest,
    FailRequest,
    FleetAdvice,
    HeartbeatRequest,
    HeartbeatResponse,
    InvalidateRequest,
    LeaseRequest,
    LeaseResponse,
    ReleaseRequest,
    ThrottleReport,
    TimelineSpec,
    UnitStateResponse,
)

log = structlog.get_logger("coordinator")


_KEYS_KEPT = 10_000
_BAD_KEYS_KEPT = 1_000


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


class Coordinator:
    """Jobs, leasing, the client_id registry and the fleet budget on one pool."""

    def __init__(self, pool: asyncpg.Pool, settings: CoordinatorSettings, metrics: Metrics):
        self.pool = pool
        self.settings = settings
        self.metrics = metrics
        self._advice: _Advice | None = None
        self._seen: dict[str, float] = {}
        # Known keys and refused ones apart: a flood of distinct bad keys fills (and
        # recycles) only its own bounded cache, never the one the fleet's keys live in.
        self._keys: dict[str, tuple[float, Principal]] = {}
        self._bad_keys: OrderedDict[str, float] = OrderedDict()
        self._gauges_lock = asyncio.Lock()
        self._gauges_until = float("-inf")
        self._running: set[int] = set()
        # Long-poll: lease calls that found nothing wait on this event; it is set (and
        # replaced) when a NOTIFY says units became leasable, or at shutdown.
        self._work_arrived = asyncio.Event()
        self._closing = False

    async def start(self) -> None:
        """Create the fleet row if this is the first coordinator on the database.

        An unmigrated database is not fatal: the process stays up and ``/readyz`` says
        why (Kubernetes keeps it out of rotation until the migration job ran).
        """
        async with self.pool.acquire() as conn:
            try:
                await q.ensure_fleet(conn, self.settings.budget_rps)
            except asyncpg.UndefinedTableError:
                log.warning("database_not_migrated")

    async def listen(self, conn: asyncpg.Connection) -> None:
        """Wake waiting lease calls on the work notifications of ``conn`` (its own connection).

        Every coordinator process listens, so a job submitted through one replica wakes
        the workers long-polling on any other. While no connection listens, a waiting
        call still claims when its wait runs out.
        """
        await conn.add_listener(q.WORK_CHANNEL, lambda *_: self.wake())

    def wake(self) -> None:
        """Let every waiting lease call claim again now."""
        # A waiter keeps the event it waits on; the next waiters get a fresh one.
        self._work_arrived.set()
        self._work_arrived = asyncio.Event()

    def close(self) -> None:
        """Shutdown: lease calls stop waiting and answer with what they have."""
        self._closing = True
        self.wake()

    # ------------------------------------------------------------------- auth

    async def authenticate(self, key: str) -> Principal | None:
        """The principal a bearer key stands for (cached for ``key_cache_s``)."""
        digest = hash_key(key)
        now = time.monotonic()
        cached = self._keys.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        refused_until = self._bad_keys.get(digest)
        if refused_until is not None and refused_until > now:
            return None
        async with self.pool.acquire() as conn:
            row = await q.lookup_key(conn, digest)
        expires = now + self.settings.key_cache_s
        if row is None:
            self._bad_keys[digest] = expires
            self._bad_keys.move_to_end(digest)
            while len(self._bad_keys) > _BAD_KEYS_KEPT:
                self._bad_keys.popitem(last=False)
            return None
        principal = Principal(row["id"], row["name"], row["role"])
        self._keys.pop(digest, None)
        if len(self._keys) >= _KEYS_KEPT:  # only real keys get here: thousands of them
            self._keys = {d: e for d, e in self._keys.items() if e[0] > now}
        self._keys[digest] = (expires, principal)
        return principal

    # ---------------------------------------------------------------- workers

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

    # ---------------------------------------------------------------- leasing

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

    # ------------------------------------------------------------- client ids

    async def client_id_state(self, worker_id: str | None) -> ClientIdState:
        """The current client_id, or whether ``worker_id`` is the one to discover it."""
        async with self.pool.acquire() as conn:
            return await self._client_id_state(conn, worker_id)

    async def _client_id_state(
        self, conn: asyncpg.Connection, worker_id: str | None
    ) -> ClientIdState:
        current = await q.current_client_id(conn)
        if current is not None:
            return ClientIdState(client_id=current, discover=False, retry_after_s=0.0)
        interval = self.settings.rediscovery_interval_s
        if worker_id is not None and await q.take_discovery(
            conn, worker_id, self.settings.discovery_timeout_s, interval
        ):
            log.info("client_id_discovery_granted", worker_id=worker_id)
            self.metrics.discoveries.inc()
            return ClientIdState(client_id=None, discover=True, retry_after_s=0.0)
        # Somebody else may have reported one meanwhile.
        current = await q.current_client_id(conn)
        if current is not None:
            return ClientIdState(client_id=current, discover=False, retry_after_s=0.0)
        wait = await q.discovery_wait(conn, interval)
        return ClientIdState(client_id=None, discover=False, retry_after_s=max(0.2, min(wait, 5.0)))

    async def report_client_id(
        self, req: ClientIdReport, who: Principal | None = None
    ) -> ClientIdState:
        """Store a discovered client_id; it becomes the fleet's current one.

        Only the worker holding the discovery grant may report one (a worker key cannot
        set the fleet's id at will; an admin key can). A rediscovery that finds the id
        the fleet had just reported refused shows that the refusal was not about the id:
        it is taken back, and counted as a block (the fleet pauses), since the web
        client itself would still send it.
        """
        async with self.pool.acquire() as conn:
            if (who is None or not who.is_admin) and not await q.holds_discovery(
                conn, req.worker_id
            ):
                raise HttpError(
                    f"worker {req.worker_id!r} does not hold the client_id discovery: only "
                    "the granted discoverer (GET /v1/client-ids/current) may report an id",
                    403,
                )
            refused = await q.client_id_refused(conn, req.value)
            await q.report_client_id(conn, req.value, req.source, req.worker_id)
            self._advice = None
            log.info("client_id_reported", source=req.source, worker_id=req.worker_id, same=refused)
            if refused:
                await self._block(conn, req.worker_id, "rediscovery returned the refused client_id")
            return await self._client_id_state(conn, req.worker_id)

    async def invalidate_client_id(self, value: str, req: InvalidateRequest) -> ClientIdState:
        """Mark a client_id invalid; answers who (if anyone) should discover a new one."""
        async with self.pool.acquire() as conn:
            await q.invalidate_client_id(conn, value)
            self._advice = None
            return await self._client_id_state(conn, req.worker_id)

    # ----------------------------------------------------------------- blocks

    async def block(self, req: BlockReport) -> BlockState:
        """A worker met the bot protection: pause the fleet (see ``queries.BLOCK``)."""
        async with self.pool.acquire() as conn:
            return await self._block(conn, req.worker_id, req.reason)

    async def _block(self, conn: asyncpg.Connection, worker_id: str, reason: str) -> BlockState:
        s = self.settings
        row = await q.block(conn, s.block_base_s, s.block_max_s, s.block_reset_s, reason)
        self._advice = None
        new = row["what"] != "same"
        if new:
            # A block is congestion too (often a burst): the budget takes the AIMD cut.
            await q.throttle(
                conn,
                s.budget_increase_rps_per_s,
                s.budget_decrease_factor,
                s.budget_min_rps,
                s.budget_decrease_window_s,
                None,
                counted=False,
            )
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

    # ----------------------------------------------------------------- budget

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
            await q.throttle(
                conn,
                s.budget_increase_rps_per_s,
                s.budget_decrease_factor,
                s.budget_min_rps,
                s.budget_decrease_window_s,
                req.retry_after_s,
            )
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

    # ------------------------------------------------------------------- jobs

    async def submit(self, job: JobSubmit, principal: Principal) -> JobView:
        """Validate, store and expand a job into its units (one transaction)."""
        max_attempts = job.max_attempts or self.settings.max_attempts
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                seeds: list[int] = []
                if isinstance(job, NetworkJob):
                    seeds = await self._resolve_seeds(conn, job.spec)
                units: q.UnitRows | None = None
                if isinstance(job, UserSweepJob):
                    spec = job.spec
                    new_units = -(-(spec.id_to - spec.id_from) // spec.chunk)
                else:
                    if isinstance(job, NetworkJob):
                        units = expand.network_seeds(job.spec, seeds)
                    elif isinstance(job, UserTracksJob):
                        units = expand.user_tracks_job(job.spec)
                    elif isinstance(job, TrackTimelinesJob):
                        units = expand.track_timelines(job.spec)
                    elif isinstance(job, PlayPollJob):
                        units = expand.play_polls(job.spec)
                    else:
                        assert isinstance(job, ScoreJob)
                        units = expand.score(job.spec)
                    new_units = len(units.payloads)
                if not principal.is_admin:
                    await self._check_quota(conn, principal, new_units)
                job_id = await q.insert_job(
                    conn, job.kind, job.spec.model_dump_json(), principal.key_id, job.priority
                )
                if isinstance(job, UserSweepJob):
                    spec = job.spec
                    n = await q.insert_sweep(
                        conn,
                        job_id,
                        spec.id_from,
                        spec.id_to,
                        spec.chunk,
                        job.priority,
                        max_attempts,
                        spec.shuffle,
                    )
                else:
                    assert units is not None
                    n = await q.insert_units(conn, job_id, units, job.priority, max_attempts)
            log.info("job_submitted", job_id=job_id, kind=job.kind, units=n, owner=principal.name)
            return await self._view(conn, job_id)

    async def _check_quota(
        self, conn: asyncpg.Connection, principal: Principal, new_units: int
    ) -> None:
        """Refuse (429) a submission past the key's quota of active jobs or queued units."""
        s = self.settings
        active, queued = await q.key_load(conn, principal.key_id)
        if active >= s.quota_active_jobs:
            raise HttpError(
                f"key {principal.name!r} has {active} active jobs, its quota is "
                f"{s.quota_active_jobs}: wait for one to finish or cancel one",
                429,
            )
        if queued + new_units > s.quota_queued_units:
            raise HttpError(
                f"key {principal.name!r} has {queued:,} units queued; this job adds "
                f"{new_units:,}, past its quota of {s.quota_queued_units:,} queued units",
                429,
            )

    async def _resolve_seeds(self, conn: asyncpg.Connection, spec: NetworkSpec) -> list[int]:
        names = [s for s in spec.seeds if isinstance(s, str)]
        known = await q.resolve_permalinks(conn, names) if names else {}
        errors = [
            FieldError(
                field=f"spec.seeds.{i}",
                message=(
                    f"permalink {seed!r} is not a user in the database; give its numeric id "
                    "(or crawl the user first)"
                ),
                type="unknown_permalink",
            )
            for i, seed in enumerate(spec.seeds)
            if isinstance(seed, str) and seed.lower() not in known
        ]
        if errors:
            raise FieldsError("network seeds could not be resolved", errors)
        ids = [s if isinstance(s, int) else known[s.lower()] for s in spec.seeds]
        return list(dict.fromkeys(ids))

    async def _view(self, conn: asyncpg.Connection, job_id: int) -> JobView:
        row = await q.get_job(conn, job_id)
        if row is None:
            raise NotFoundError(f"job {job_id} does not exist")
        prog = await q.progress(conn, [job_id])
        return _job_view(row, prog.get(job_id))

    async def get_job(self, job_id: int, principal: Principal) -> JobView:
        """One job with progress; researchers only see their own."""
        async with self.pool.acquire() as conn:
            row = await q.get_job(conn, job_id)
            if row is None or not _may_see(principal, row):
                raise NotFoundError(f"job {job_id} does not exist")
            prog = await q.progress(conn, [job_id])
            if await self._heal(conn, [row], prog):
                return await self._view(conn, job_id)
        return _job_view(row, prog.get(job_id))

    async def _heal(
        self,
        conn: asyncpg.Connection,
        rows: Sequence[asyncpg.Record],
        prog: dict[int, asyncpg.Record],
    ) -> bool:
        """Close jobs whose units all ended but whose row still says otherwise.

        Completions close their job right after committing; a coordinator that died in
        between leaves the job `running`. Reading it repairs it (True if any changed).
        """
        stuck = [
            r["id"]
            for r in rows
            if r["state"] in ("queued", "running")
            and (p := prog.get(r["id"])) is not None
            and p["queued"] + p["leased"] == 0
        ]
        return bool(stuck) and bool(await q.finish_jobs(conn, stuck))

    async def list_jobs(
        self,
        principal: Principal,
        state: str | None,
        kind: str | None,
        before: int | None,
        limit: int,
    ) -> JobList:
        """Jobs newest first; researchers only see their own."""
        owner = None if principal.is_admin else principal.key_id
        async with self.pool.acquire() as conn:
            rows = await q.list_jobs(conn, owner, state, kind, before, limit)
            prog = await q.progress(conn, [r["id"] for r in rows])
            if await self._heal(conn, rows, prog):
                rows = await q.list_jobs(conn, owner, state, kind, before, limit)
                prog = await q.progress(conn, [r["id"] for r in rows])
        views = [_job_view(r, prog.get(r["id"])) for r in rows]
        next_before = rows[-1]["id"] if len(rows) == limit else None
        return JobList(jobs=views, next_before=next_before)

    async def dead_units(self, limit: int = 50) -> list[asyncpg.Record]:
        """The most recent dead units, newest first, with their last error."""
        async with self.pool.acquire() as conn:
            return await q.dead_units(conn, limit)

    async def cancel(self, job_id: int, principal: Principal) -> JobView:
        """Cancel queued units now; leased ones learn it on their next heartbeat."""
        async with self.pool.acquire() as conn:
            row = await q.get_job(conn, job_id)
            if row is None or not _may_see(principal, row):
                raise NotFoundError(f"job {job_id} does not exist")
            if not await q.cancel_job(conn, job_id) and row["state"] != "cancelled":
                raise ConflictError(f"job {job_id} already ended ({row['state']})")
            log.info("job_cancelled", job_id=job_id, by=principal.name)
            return await self._view(conn, job_id)

    # ----------------------------------------------------------- scoring runs

    async def scoring_runs(
        self,
        principal: Principal,
        model: str | None,
        before: int | None,
        limit: int,
        run_id: int | None = None,
    ) -> ScoringRunList:
        """Scoring runs newest first (researchers: their jobs' runs and job-less ones)."""
        owner = None if principal.is_admin else principal.key_id
        async with self.pool.acquire() as conn:
            rows = await q.scoring_runs(conn, owner, model, before, run_id, limit)
        runs = [_run_view(r) for r in rows]
        next_before = rows[-1]["id"] if len(rows) == limit else None
        return ScoringRunList(runs=runs, next_before=next_before)

    async def scoring_run(self, run_id: int, principal: Principal) -> ScoringRunView:
        """One scoring run."""
        page = await self.scoring_runs(principal, None, None, 1, run_id)
        if not page.runs:
            raise NotFoundError(f"scoring run {run_id} does not exist")
        return page.runs[0]

    # ----------------------------------------------------------------- health

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


_MAX_ID = 2**53


def _valid_ids(ids: Sequence[int]) -> list[int]:
    """Discovered ids a unit payload can carry (a buggy worker cannot poison the queue)."""
    return [i for i in ids if 1 <= i <= _MAX_ID]


def _json_or_none(text: str | None) -> Any:
    return json.loads(text) if text is not None else None


def _run_view(row: asyncpg.Record) -> ScoringRunView:
    return ScoringRunView(
        id=row["id"],
        model=row["model"],
        model_version=row["model_version"],
        params=json.loads(row["params"]),
        state=row["state"],
        metrics=_json_or_none(row["metrics"]),
        durations=_json_or_none(row["durations"]),
        error=row["error"],
        job_id=row["job_id"],
        unit_id=row["unit_id"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


def _may_see(principal: Principal, row: asyncpg.Record) -> bool:
    return principal.is_admin or row["owner_key_id"] == principal.key_id


RATE_WINDOW_S = 60.0


def _units_per_s(
    row: asyncpg.Record, prog: asyncpg.Record | None, recent: int, finished: int
) -> float:
    """Units finished per second over the job's own history.

    A running job's rate is over the last minute, or over its whole age while it is
    younger than that (a 20-second-old job's units are not spread over 60 s); a
    finished job's is over its life from submission to its end.
    """
    if prog is None:
        return 0.0
    now_s = float(prog["now_s"])
    age_s = now_s - row["created_at"].timestamp()
    if row["finished_at"] is not None:
        life_s = row["finished_at"].timestamp() - row["created_at"].timestamp()
        return finished / life_s if life_s > 0 else 0.0
    window = min(RATE_WINDOW_S, age_s)
    return recent / window if window > 0 else 0.0


def _job_view(row: asyncpg.Record, prog: asyncpg.Record | None) -> JobView:
    counts = {
        k: int(prog[k]) if prog is not None else 0
        for k in (
            "total",
            "queued",
            "retrying",
            "leased",
            "done",
            "failed",
            "dead",
            "cancelled",
            "rows_landed",
            "recent",
            "finished",
        )
    }
    rate = _units_per_s(row, prog, counts["recent"], counts["finished"])
    remaining = counts["queued"] + counts["leased"]
    if remaining == 0:
        eta: float | None = 0.0
    elif rate > 0:
        eta = remaining / rate
    else:
        eta = None
    return JobView(
        id=row["id"],
        kind=row["kind"],
        spec=json.loads(row["spec"]),
        state=row["state"],
        priority=row["priority"],
        owner=row["owner"],
        error=row["error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        finished_at=row["finished_at"],
        progress=JobProgress(
            total=counts["total"],
            queued=counts["queued"],
            retrying=counts["retrying"],
            leased=counts["leased"],
            done=counts["done"],
            failed=counts["failed"],
            dead=counts["dead"],
            cancelled=counts["cancelled"],
            rows_landed=counts["rows_landed"],
            units_per_s=rate,
            eta_s=eta,
        ),
    )
