"""API keys: bearer keys resolved to principals, with bounded caches."""

from __future__ import annotations

import time
from collections import OrderedDict

import asyncpg

from coordinator import queries as q
from coordinator.auth import Principal, hash_key
from coordinator.core import ServiceState
from coordinator.metrics import Metrics
from schemas.coordinator import CoordinatorSettings

_KEYS_KEPT = 10_000
_BAD_KEYS_KEPT = 1_000


class KeyService(ServiceState):
    """Who a bearer key stands for."""

    def __init__(self, pool: asyncpg.Pool, settings: CoordinatorSettings, metrics: Metrics) -> None:
        super().__init__(pool, settings, metrics)
        # Known keys and refused ones apart: a flood of distinct bad keys fills (and
        # recycles) only its own bounded cache, never the one the fleet's keys live in.
        self._keys: dict[str, tuple[float, Principal]] = {}
        self._bad_keys: OrderedDict[str, float] = OrderedDict()

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
