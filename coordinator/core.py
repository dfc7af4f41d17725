"""The coordinator's shared state and lifecycle: its pool, settings, metrics and the
long-poll that wakes waiting lease calls (the base of every part of :mod:`.service`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import structlog

from coordinator import queries as q
from coordinator.auth import Principal
from coordinator.metrics import Metrics
from schemas.coordinator import CoordinatorSettings

log = structlog.get_logger("coordinator")


class ServiceState:
    """What every part of the coordinator shares: one pool, the settings, the metrics."""

    def __init__(self, pool: asyncpg.Pool, settings: CoordinatorSettings, metrics: Metrics) -> None:
        self.pool = pool
        self.settings = settings
        self.metrics = metrics
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


def may_see(principal: Principal, row: asyncpg.Record) -> bool:
    """Whether ``principal`` may read the job or run of ``row`` (its owner, or an admin)."""
    return principal.is_admin or row["owner_key_id"] == principal.key_id


def json_or_none(text: str | None) -> Any:
    """The decoded JSON text of a nullable column."""
    return json.loads(text) if text is not None else None
