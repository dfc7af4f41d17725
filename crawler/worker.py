"""The worker process: lease units, run their handlers, heartbeat, drain on SIGTERM.

Lifecycle of one unit: leased (with a fencing token and maybe a resume cursor) ->
handler runs, landing batches and moving ``ctx.cursor`` past committed rows -> a
heartbeat task extends the lease every third of its length, sending that cursor ->
``complete`` once every row is committed, ``fail`` (retryable or not) on error, or
``release`` with the cursor when the worker drains.

SIGTERM/SIGINT: stop leasing; running units stop at their next checkpoint and are
released with their cursor; whatever has not stopped when ``grace_s`` runs out is
cancelled (its uncommitted batch rolls back) and released at its last committed
cursor. The process then exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit

import structlog

from crawler.clientids import FleetClientIds
from crawler.config import DISCOVERY_ORDER, WorkerSettings
from crawler.discovery import Discoverer
from crawler.errors import BodyTooLarge, DiscoveryError, TransientError
from crawler.handlers import HANDLERS, Drained, UnitContext, UnitResult
from crawler.http import ApiClient, RetryPolicy
from crawler.metrics import WorkerMetrics
from crawler.ratelimit import TokenBucket
from crawler.store import Fence, Store
from crawler.transport import (
    AiohttpTransport,
    BrowserProfile,
    ImpersonatingTransport,
    Transport,
    create_session,
)
from runtime.client import CoordinatorClient
from runtime.logs import short
from schemas.errors import (
    CoordinatorError,
    DatabaseError,
    InputError,
    LeaseLost,
    SoundfleetError,
)
from schemas.work import FleetAdvice, Lease

log = structlog.get_logger("crawler.worker")


def new_worker_id() -> str:
    """A worker id unique per process start: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def strategies(settings: WorkerSettings) -> tuple[str, ...]:
    """The discovery strategies to try, in order."""
    return DISCOVERY_ORDER if settings.discovery == "auto" else (settings.discovery,)


def retry_policy(settings: WorkerSettings) -> RetryPolicy:
    """The HTTP retry policy the settings describe."""
    return RetryPolicy(
        max_retries=settings.max_retries,
        max_throttle_waits=settings.max_throttle_waits,
        max_rejections=settings.max_rejections,
        max_block_waits=settings.max_block_waits,
        backoff_base_s=settings.backoff_base_s,
        backoff_max_s=settings.backoff_max_s,
        throttle_default_s=settings.throttle_wait_s(),
        throttle_max_s=settings.throttle_max_s,
        block_base_s=settings.block_base_s,
        block_max_s=settings.block_max_s,
        max_body_bytes=settings.max_body_bytes,
    )


def browser_profile(settings: WorkerSettings) -> BrowserProfile:
    """The web client's look the settings describe (Origin: the web client's own)."""
    origin = settings.origin or settings.web_base
    parts = urlsplit(origin)
    return BrowserProfile(
        user_agent=settings.user_agent,
        origin=f"{parts.scheme}://{parts.netloc}",
        accept_language=settings.accept_language,
    )


def open_transport(settings: WorkerSettings, profile: BrowserProfile) -> Transport:
    """The configured HTTP client (:mod:`crawler.transport`)."""
    if settings.transport == "impersonate":
        return ImpersonatingTransport(profile, settings.concurrency, settings.request_timeout_s)
    return AiohttpTransport(
        create_session(settings.concurrency, settings.request_timeout_s, profile)
    )


class _Running:
    """Book-keeping of one running unit."""

    def __init__(self, lease: Lease, ctx: UnitContext) -> None:
        self.lease = lease
        self.ctx = ctx
        self.task: asyncio.Task[None] | None = None
        self.lost = False
        self.cancelled_by_job = False


class Worker:
    """One worker process's event loop side."""

    def __init__(
        self,
        settings: WorkerSettings,
        dsn: str,
        worker_id: str | None = None,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        if not settings.api_key:
            raise InputError("the worker needs a coordinator key (--key or SOUNDFLEET_API_KEY)")
        self.settings = settings
        self.dsn = dsn
        self.worker_id = worker_id or new_worker_id()
        self.metrics = metrics or WorkerMetrics()
        self.draining = asyncio.Event()
        self.bucket = TokenBucket(0)
        self._raise_seen_at: float | None = None
        self._running: dict[int, _Running] = {}
        self._kinds = tuple(k for k in settings.kinds if k in HANDLERS)
        if not self._kinds:
            raise InputError(f"no crawl kind among --kinds {','.join(settings.kinds)}")
        self.log = log.bind(worker_id=self.worker_id)

    # ------------------------------------------------------------------ politeness

    def apply(self, fleet: FleetAdvice, client_ids: FleetClientIds) -> None:
        """Apply the coordinator's advice: rate share, fleet pause, current client_id."""
        self._apply_share(fleet.rate_share_rps, time.monotonic())
        if fleet.paused_until is not None:
            seconds = (fleet.paused_until - datetime.now(UTC)).total_seconds()
            if seconds > 0:
                self.bucket.pause(seconds)
        client_ids.advise(fleet.client_id)

    def _apply_share(self, share: float, now: float) -> None:
        """A cut at once; a raise only once it has been advised for a refresh period.

        Shares follow the units each worker holds, so one worker's raise is another's
        cut: applied at once, a raise would add to the old share the other still sends
        at until its next advice, and the sum would overrun the platform's limit. A cut
        is always safe; the first advice (from "unlimited") is a cut.
        """
        current = self.bucket.rate
        if current <= 0 or share <= current:
            self._raise_seen_at = None
        elif self._raise_seen_at is None:
            self._raise_seen_at = now
            return
        elif now - self._raise_seen_at < self.settings.advice_refresh_s:
            return
        else:
            self._raise_seen_at = None
        self.bucket.set_rate(share)
        self.metrics.rate_share.set(share)

    async def _refresh_advice(
        self, coordinator: CoordinatorClient, client_ids: FleetClientIds
    ) -> None:
        """Ask for the advice every ``advice_refresh_s`` while units run (see _apply_share)."""
        every = self.settings.advice_refresh_s
        while not self.draining.is_set():
            await _wait_any(self.draining, timeout=every)
            if not self._running or self.draining.is_set():
                continue
            try:
                self.apply(await coordinator.advice(), client_ids)
            except CoordinatorError as exc:
                self.log.warning("advice_failed", error=str(exc))

    # ------------------------------------------------------------------ main loop

    def request_drain(self) -> None:
        """Stop leasing and bring running units to a checkpoint (SIGTERM/SIGINT)."""
        if not self.draining.is_set():
            self.log.info("worker_draining", running=len(self._running))
            self.draining.set()

    async def run(self, stop_after_idle: float | None = None) -> int:
        """Lease and work until drained; returns the exit status (0).

        ``stop_after_idle`` (tests, benchmarks): drain by itself once no unit has been
        leasable for that many seconds.
        """
        structlog.contextvars.bind_contextvars(worker_id=self.worker_id)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_drain)
        s = self.settings
        store = await Store.open(self.dsn, size=s.db_pool_size)
        profile = browser_profile(s)
        transport = open_transport(s, profile)
        try:
            async with CoordinatorClient(
                s.coordinator_url, s.api_key or "", self.worker_id
            ) as coordinator:
                discoverer = Discoverer(
                    transport, s.web_base, s.api_base, strategies(s), s.chromium, profile
                )
                client_ids = FleetClientIds(coordinator, discoverer, self.metrics)
                api = ApiClient(
                    transport,
                    s.api_base,
                    client_ids,
                    concurrency=s.concurrency,
                    timeout_s=s.request_timeout_s,
                    bucket=self.bucket,
                    policy=retry_policy(s),
                    metrics=self.metrics,
                    profile=profile,
                    on_throttle=coordinator.throttled,
                    on_block=coordinator.blocked,
                )
                self.log.info(
                    "worker_started",
                    kinds=list(self._kinds),
                    concurrency=s.concurrency,
                    coordinator=s.coordinator_url,
                    key=short(s.api_key),
                )
                advising = asyncio.create_task(self._refresh_advice(coordinator, client_ids))
                try:
                    await self._lease_loop(coordinator, client_ids, api, store, stop_after_idle)
                    await self._drain(coordinator)
                finally:
                    advising.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await advising
        finally:
            await transport.close()
            await store.close()
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
        self.log.info("worker_stopped")
        return 0

    async def _lease_loop(
        self,
        coordinator: CoordinatorClient,
        client_ids: FleetClientIds,
        api: ApiClient,
        store: Store,
        stop_after_idle: float | None,
    ) -> None:
        loop = asyncio.get_running_loop()
        idle_since: float | None = None
        slots_free = asyncio.Event()
        while not self.draining.is_set():
            free = self.settings.unit_slots - len(self._running)
            if free <= 0:
                slots_free.clear()
                await _wait_any(slots_free, self.draining)
                continue
            # A unit that finished before this lease was asked for is counted in
            # ``free`` already; only later completions may cut the idle wait below
            # short (a flag left set would have the loop re-lease without pause while
            # the job has no unit left for us but some of ours still run).
            slots_free.clear()
            # A long-poll: with nothing leasable the coordinator holds the call until a
            # job is submitted or a unit released, so new work starts at once.
            wait = self.settings.idle_poll_s
            asked = loop.time()
            try:
                response = await coordinator.lease(self._kinds, free, wait_s=wait)
            except CoordinatorError as exc:
                self.log.warning("lease_failed", error=str(exc))
                await _wait_any(self.draining, timeout=wait)
                continue
            self.apply(response.fleet, client_ids)
            if response.units and self.draining.is_set():
                # SIGTERM came while the call waited: these units go straight back.
                for lease in response.units:
                    ulog = self.log.bind(unit_id=lease.unit_id)
                    await self._release(lease, lease.cursor, 0, coordinator, ulog)
                break
            for lease in response.units:
                self._start(lease, coordinator, client_ids, api, store, slots_free)
            if response.units:
                idle_since = None
                continue
            if not self._running:
                idle_since = idle_since if idle_since is not None else loop.time()
                if stop_after_idle is not None and loop.time() - idle_since >= stop_after_idle:
                    self.log.info("worker_idle_exit")
                    self.draining.set()
                    break
            else:
                idle_since = None
            if loop.time() - asked < wait / 2:
                # Answered empty without waiting (a coordinator shutting down): pause
                # here instead, or the loop would spin on it.
                await _wait_any(self.draining, timeout=wait)

    def _start(
        self,
        lease: Lease,
        coordinator: CoordinatorClient,
        client_ids: FleetClientIds,
        api: ApiClient,
        store: Store,
        slots_free: asyncio.Event,
    ) -> None:
        fence = Fence(lease.unit_id, lease.token)
        ctx = UnitContext(lease, api, store, self.settings, self.metrics, self.draining, fence)
        running = _Running(lease, ctx)
        self._running[lease.unit_id] = running
        self.metrics.units_active.set(len(self._running))

        async def unit() -> None:
            try:
                await self._run_unit(running, coordinator, client_ids)
            finally:
                self._running.pop(lease.unit_id, None)
                self.metrics.units_active.set(len(self._running))
                slots_free.set()

        running.task = asyncio.create_task(unit(), name=f"unit-{lease.unit_id}")

    async def _drain(self, coordinator: CoordinatorClient) -> None:
        """Wait up to the grace period for running units, then cancel and release them."""
        tasks = [r.task for r in self._running.values() if r.task is not None]
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=self.settings.grace_s)
        if pending:
            self.log.warning("drain_grace_expired", cancelled=len(pending))
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    # ------------------------------------------------------------------ one unit

    async def _run_unit(
        self, running: _Running, coordinator: CoordinatorClient, client_ids: FleetClientIds
    ) -> None:
        lease, ctx = running.lease, running.ctx
        structlog.contextvars.bind_contextvars(unit_id=lease.unit_id, job_id=lease.job_id)
        ulog = self.log.bind(unit_id=lease.unit_id, job_id=lease.job_id, kind=lease.kind)
        ulog.info("unit_started", resume=bool(lease.cursor), token=lease.token)
        beat = asyncio.create_task(self._heartbeat(running, coordinator, client_ids))
        outcome = "error"
        try:
            result: UnitResult = await HANDLERS[lease.kind](ctx)
            beat.cancel()
            await coordinator.complete(
                lease.unit_id,
                lease.token,
                ctx.rows,
                result.discovered_user_ids,
                result.discovered_track_ids,
            )
            outcome = "done"
            ulog.info("unit_done", rows=ctx.rows)
        except Drained:
            beat.cancel()
            await self._release(lease, ctx.cursor, ctx.rows, coordinator, ulog)
            outcome = "released"
        except asyncio.CancelledError:
            beat.cancel()
            if running.lost:
                outcome = "lost"
            else:
                # Grace ran out (or the job was cancelled): give the unit back at its
                # last committed checkpoint; shielded so the report is not cut short.
                await asyncio.shield(self._release(lease, ctx.cursor, ctx.rows, coordinator, ulog))
                outcome = "released"
                if not running.cancelled_by_job:
                    raise
        except LeaseLost:
            beat.cancel()
            self.metrics.lease_losses.inc()
            outcome = "lost"
            ulog.warning("lease_lost")
        except (
            TransientError,
            BodyTooLarge,
            DatabaseError,
            DiscoveryError,
            CoordinatorError,
        ) as exc:
            beat.cancel()
            outcome = await self._fail(running, coordinator, ulog, exc, retryable=True)
        except (InputError, SoundfleetError) as exc:
            beat.cancel()
            outcome = await self._fail(running, coordinator, ulog, exc, retryable=False)
        except Exception as exc:  # a bug must cost one attempt of one unit, not the worker
            beat.cancel()
            ulog.exception("unit_crashed")
            outcome = await self._fail(running, coordinator, ulog, exc, retryable=True)
        finally:
            self.metrics.units.labels(lease.kind, outcome).inc()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _fail(
        self,
        running: _Running,
        coordinator: CoordinatorClient,
        ulog: structlog.typing.FilteringBoundLogger,
        exc: BaseException,
        *,
        retryable: bool,
    ) -> str:
        error = f"{type(exc).__name__}: {exc}"
        ulog.warning("unit_failed", error=error[:500], retryable=retryable, rows=running.ctx.rows)
        try:
            await coordinator.fail(
                running.lease.unit_id,
                running.lease.token,
                error,
                retryable,
                running.ctx.rows,
                running.ctx.cursor,
            )
        except LeaseLost:
            self.metrics.lease_losses.inc()
            return "lost"
        except CoordinatorError as report_exc:
            ulog.error("unit_fail_report_failed", error=str(report_exc))
        return "failed" if retryable else "dead"

    async def _release(
        self,
        lease: Lease,
        cursor: str | None,
        rows: int,
        coordinator: CoordinatorClient,
        ulog: structlog.typing.FilteringBoundLogger,
    ) -> None:
        """Give ``lease`` back at ``cursor`` (its last committed checkpoint)."""
        try:
            await coordinator.release(lease.unit_id, lease.token, cursor, rows)
            ulog.info("unit_released", cursor=cursor, rows=rows)
        except LeaseLost:
            self.metrics.lease_losses.inc()
        except CoordinatorError as exc:
            ulog.error("unit_release_failed", error=str(exc))

    async def _heartbeat(
        self, running: _Running, coordinator: CoordinatorClient, client_ids: FleetClientIds
    ) -> None:
        lease, ctx = running.lease, running.ctx
        expires = lease.lease_expires_at
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            period = self.settings.heartbeat_s
            if period is None:
                period = max(0.5, (expires - datetime.now(UTC)).total_seconds() / 3)
            # A landed checkpoint goes out a third of a period after the last beat, not a
            # whole period: a worker killed in between would hand its successor those
            # pages again, and under steady kills a unit might never get past them.
            await _wait_any(ctx.moved, timeout=period)
            await asyncio.sleep(max(0.0, last + period / 3 - loop.time()))
            ctx.moved.clear()
            last = loop.time()
            try:
                beat = await coordinator.heartbeat(lease.unit_id, lease.token, ctx.cursor, ctx.rows)
            except LeaseLost:
                self.metrics.lease_losses.inc()
                self.log.warning("lease_lost", unit_id=lease.unit_id)
                running.lost = True
                if running.task is not None:
                    running.task.cancel()
                return
            except CoordinatorError as exc:
                self.log.warning("heartbeat_failed", unit_id=lease.unit_id, error=str(exc))
                continue
            expires = beat.lease_expires_at
            self.apply(beat.fleet, client_ids)
            if beat.cancel:
                self.log.info("unit_cancelled_by_job", unit_id=lease.unit_id)
                running.cancelled_by_job = True
                if running.task is not None:
                    running.task.cancel()
                return


async def _wait_any(*events: asyncio.Event, timeout: float | None = None) -> None:
    """Return when any of ``events`` is set, or after ``timeout``."""
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
