"""Where the worker gets its client_id: the fleet (coordinator) or local discovery.

Both providers are single flight inside the process: however many requests see a 401
at once, the id is reported and replaced once, and every request waits for the one
replacement before it is sent again.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import structlog

from crawler.discovery import Discoverer
from crawler.errors import DiscoveryError
from crawler.metrics import WorkerMetrics
from runtime.client import CoordinatorClient
from runtime.logs import short

log = structlog.get_logger("crawler.clientids")


class ClientIdProvider(Protocol):
    """The client_id requests are sent with, and what to do when it is refused."""

    @property
    def known(self) -> str | None:
        """The id in hand, if any, without waiting (else await :meth:`current`)."""
        ...

    async def current(self) -> str:
        """The id to use now (waits for a rediscovery in progress)."""
        ...

    async def rejected(self, value: str) -> None:
        """The platform refused ``value``: drop it (once, however many callers report it)."""
        ...

    def advise(self, value: str | None) -> None:
        """The coordinator's view of the fleet's current id (sent with leases)."""
        ...


class _Held:
    """The id in hand and the ids the platform refused, as both providers keep them.

    A refused id must not come back through a lease response sent before the
    coordinator saw the refusal; a rediscovery that finds it again takes it back.
    """

    def __init__(self) -> None:
        self._value: str | None = None
        self._lock = asyncio.Lock()
        self._refused: set[str] = set()

    @property
    def known(self) -> str | None:
        """The id in hand, if any, without waiting (else await ``current()``)."""
        return self._value

    def advise(self, value: str | None) -> None:
        """Adopt an id from outside unless the platform refused it already."""
        if value and value not in self._refused:
            self._value = value


class LocalClientIds(_Held):
    """Discover locally, without a coordinator (benchmarks, ``--check``, tests)."""

    def __init__(self, discoverer: Discoverer, metrics: WorkerMetrics | None = None) -> None:
        super().__init__()
        self._discoverer = discoverer
        self._metrics = metrics

    async def current(self) -> str:
        """The id to use now."""
        if self._value is not None:
            return self._value
        async with self._lock:
            if self._value is None:
                found = await self._discoverer.discover()
                if self._metrics is not None:
                    self._metrics.discoveries.labels(found.source, "true").inc()
                # The page still names the refused id: the refusal was not about the id
                # (a block, or a platform hiccup), so it is taken back.
                self._refused.discard(found.value)
                self._value = found.value
            return self._value

    async def rejected(self, value: str) -> None:
        """Forget ``value`` so the next :meth:`current` rediscovers."""
        self._refused.add(value)
        if self._value == value:
            self._value = None


class FleetClientIds(_Held):
    """The coordinator's client_id registry; this worker discovers when told to."""

    def __init__(
        self,
        coordinator: CoordinatorClient,
        discoverer: Discoverer,
        metrics: WorkerMetrics | None = None,
        max_wait_s: float = 120.0,
    ) -> None:
        super().__init__()
        self._coordinator = coordinator
        self._discoverer = discoverer
        self._metrics = metrics
        self._max_wait_s = max_wait_s

    async def current(self) -> str:
        """The fleet's id; runs the discovery itself when the coordinator says so."""
        if self._value is not None:
            return self._value
        async with self._lock:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._max_wait_s
            value = self._value
            while value is None:
                state = await self._coordinator.client_id()
                if state.client_id:
                    self._refused.discard(state.client_id)
                    value = self._value = state.client_id
                    break
                if state.discover:
                    value = await self._discover()
                    break
                if loop.time() > deadline:
                    raise DiscoveryError(
                        f"no valid client_id from the fleet after {self._max_wait_s:g}s"
                    )
                await asyncio.sleep(max(0.05, min(state.retry_after_s, 5.0)))
                value = self._value
            return value

    async def _discover(self) -> str:
        log.info("discovery_started")
        try:
            found = await self._discoverer.discover()
        except DiscoveryError:
            if self._metrics is not None:
                self._metrics.discoveries.labels("none", "false").inc()
            raise
        if self._metrics is not None:
            self._metrics.discoveries.labels(found.source, "true").inc()
        await self._coordinator.report_client_id(found.value, found.source)
        log.info("client_id_reported", source=found.source, client_id=short(found.value))
        self._refused.discard(found.value)
        self._value = found.value
        return found.value

    async def rejected(self, value: str) -> None:
        """Report ``value`` invalid to the fleet (once) and forget it."""
        if value in self._refused:
            return
        self._refused.add(value)
        if self._value == value:
            self._value = None
        log.warning("client_id_rejected", client_id=short(value))
        await self._coordinator.invalidate_client_id(value)
