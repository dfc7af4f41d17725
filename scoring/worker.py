"""The scoring worker (``soundfleet scorer``): leases ``score`` units and runs them.

One unit is one recorded scoring run (:func:`scoring.registry.run_model` with the
unit's id, so a re-issued unit returns the finished run instead of scoring twice).
While a run computes, the lease is kept alive with heartbeats. Outcomes:

* the run finished, or recorded why it could not score (``CannotScore``): complete;
* the unit is malformed (unknown model, bad parameters): fail, not retryable;
* anything else (database down, a bug): fail, retryable with the coordinator's backoff.

SIGTERM (via ``stop``): no new lease is taken; the unit in progress finishes (a run is
all-or-nothing, so there is no checkpoint to hand over).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Awaitable
from typing import Any

import structlog
from pydantic import ValidationError

from runtime import database
from runtime.client import CoordinatorClient
from schemas.errors import InputError, LeaseLost, SoundfleetError
from schemas.work import Lease, ScorePayload
from scoring.registry import run_model

log = structlog.get_logger("scoring.worker")


def new_worker_id() -> str:
    """Unique per process start: host, pid and a random suffix."""
    return f"score-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


async def _heartbeat(client: CoordinatorClient, lease: Lease, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            await client.heartbeat(lease.unit_id, lease.token, None, 0)
        except SoundfleetError as exc:
            # A missed heartbeat is not fatal: the run is idempotent per unit.
            log.warning("score_heartbeat_failed", unit_id=lease.unit_id, error=str(exc))


async def _report(report: Awaitable[Any], bound: Any) -> None:
    try:
        await report
    except LeaseLost as exc:
        # The lease was re-issued meanwhile; the new holder reports the unit.
        bound.warning("score_unit_stale", error=str(exc))


async def run_unit(client: CoordinatorClient, dsn: str, lease: Lease, heartbeat_s: float) -> str:
    """Run one leased unit and report it; returns ``complete`` or ``fail``."""
    bound = log.bind(unit_id=lease.unit_id, job_id=lease.job_id, worker_id=client.worker_id)
    retryable = True
    beat = asyncio.create_task(_heartbeat(client, lease, heartbeat_s))
    try:
        payload = ScorePayload.model_validate(lease.payload)
        async with database.connection(dsn) as conn:
            run_id = await run_model(
                conn, payload.model, payload.params, unit_id=lease.unit_id, job_id=lease.job_id
            )
    except (ValidationError, InputError) as exc:
        error, retryable = f"bad score unit: {exc}".splitlines()[0], False
    except SoundfleetError as exc:
        error = str(exc)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    else:
        beat.cancel()
        await _report(client.complete(lease.unit_id, lease.token, 0), bound)
        bound.info("score_unit_done", run_id=run_id, model=payload.model)
        return "complete"
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
    await _report(client.fail(lease.unit_id, lease.token, error, retryable), bound)
    bound.warning("score_unit_failed", error=error, retryable=retryable)
    return "fail"


async def serve(
    coordinator_url: str,
    api_key: str | None,
    dsn: str,
    *,
    worker_id: str | None = None,
    poll_s: float = 2.0,
    heartbeat_s: float = 20.0,
    max_units: int | None = None,
    stop: asyncio.Event | None = None,
) -> dict[str, Any]:
    """Lease and run ``score`` units until ``stop`` is set (or ``max_units`` are done)."""
    worker_id = worker_id or new_worker_id()
    stop = stop or asyncio.Event()
    outcomes = {"complete": 0, "fail": 0}
    log.info("score_worker_started", worker_id=worker_id, coordinator=coordinator_url)
    async with CoordinatorClient(coordinator_url, api_key, worker_id) as client:
        while not stop.is_set():
            if max_units is not None and sum(outcomes.values()) >= max_units:
                break
            leased = await client.lease(("score",), 1)
            if not leased.units:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), poll_s)
                continue
            for lease in leased.units:
                outcomes[await run_unit(client, dsn, lease, heartbeat_s)] += 1
    log.info("score_worker_stopped", worker_id=worker_id, **outcomes)
    return {"worker_id": worker_id, **outcomes}
