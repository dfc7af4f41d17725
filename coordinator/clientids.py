"""The fleet's client_id registry: one current id, single-flight rediscovery, refusals."""

from __future__ import annotations

import asyncpg
import structlog

from coordinator import queries as q
from coordinator.auth import Principal
from coordinator.errors import HttpError
from coordinator.fleet import FleetService
from schemas.work import ClientIdReport, ClientIdState, InvalidateRequest

log = structlog.get_logger("coordinator")


class ClientIdService(FleetService):
    """The client_id every worker uses, and who rediscovers it."""

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
