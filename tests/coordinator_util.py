"""Helpers for the coordinator tests: API keys per role and an in-process app client."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from coordinator import queries as q
from coordinator.app import create_app
from coordinator.auth import new_key
from runtime import database
from schemas.coordinator import CoordinatorSettings

KEY_NAMES = ("researcher", "researcher2", "worker", "admin")


async def make_keys(dsn: str) -> dict[str, str]:
    """One key per role (and a second researcher); returns name -> bearer key."""
    keys: dict[str, str] = {}
    async with database.connection(dsn) as conn:
        for name in KEY_NAMES:
            key, digest, prefix = new_key()
            role = "researcher" if name.startswith("researcher") else name
            await q.create_key(conn, name, role, digest, prefix)
            keys[name] = key
    return keys


def auth(key: str) -> dict[str, str]:
    """Authorization header for ``key``."""
    return {"Authorization": f"Bearer {key}"}


@contextlib.asynccontextmanager
async def app_client(dsn: str, **overrides: Any) -> AsyncIterator[TestClient[Any, Any]]:
    """A test client on a fresh coordinator app (caches off so tests see every write)."""
    # The tests' platform is a loopback one (the simulator's defaults: 20 requests/s,
    # no rediscovery interval); the real host's defaults are tested on their own.
    settings = CoordinatorSettings(
        **{
            "key_cache_s": 0.0,
            "fleet_cache_s": 0.0,
            "metrics_cache_s": 0.0,
            "db_pool_size": 8,
            "platform_api_base": "http://127.0.0.1:8701/api",
            "rediscovery_interval_s": 0.0,
            **overrides,
        }
    )
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(settings, dsn)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


class Api:
    """Tiny typed-ish wrapper: JSON calls with a key, returning (status, body)."""

    def __init__(self, client: TestClient[Any, Any], keys: dict[str, str]) -> None:
        self.client = client
        self.keys = keys

    async def call(
        self, method: str, path: str, as_: str | None, body: Any = None, **kw: Any
    ) -> tuple[int, Any]:
        """One request; ``as_`` names the key (None: no key)."""
        headers = auth(self.keys[as_]) if as_ else {}
        resp = await self.client.request(method, path, json=body, headers=headers, **kw)
        data = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, data

    async def submit(self, kind: str, spec: dict[str, Any], as_: str = "researcher") -> Any:
        """Submit a job and return its view (asserting 201)."""
        status, data = await self.call("POST", "/v1/jobs", as_, {"kind": kind, "spec": spec})
        assert status == 201, data
        return data

    async def lease(self, worker: str, kinds: list[str], n: int = 1) -> list[dict[str, Any]]:
        """Lease up to ``n`` units as ``worker``."""
        status, data = await self.call(
            "POST", "/v1/leases", "worker", {"worker_id": worker, "kinds": kinds, "max_units": n}
        )
        assert status == 200, data
        units: list[dict[str, Any]] = data["units"]
        return units

    async def complete(self, worker: str, unit: dict[str, Any], **extra: Any) -> tuple[int, Any]:
        """Complete a leased unit."""
        body = {"worker_id": worker, "token": unit["token"], **extra}
        return await self.call("POST", f"/v1/leases/{unit['unit_id']}/complete", "worker", body)
