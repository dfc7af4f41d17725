"""The coordinator's HTTP API as the worker sees it (bodies from :mod:`schemas.work`)."""

from __future__ import annotations

import os
import socket
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import structlog
from pydantic import BaseModel, ValidationError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

from crawler.errors import CoordinatorError, LeaseLost
from schemas.errors import ConfigError
from schemas.work import (
    BlockReport,
    BlockState,
    ClientIdReport,
    ClientIdState,
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
    UnitStateResponse,
)

log = structlog.get_logger("crawler.fleet")

ModelT = TypeVar("ModelT", bound=BaseModel)

# Transport failures towards the coordinator are retried this many times (it may be
# restarting behind a Service), with full jitter so a fleet does not retry in step;
# after that the caller sees CoordinatorError.
_ATTEMPTS = 5


class _ServerBusy(Exception):
    """A 5xx from the coordinator: worth another try."""


_TRANSIENT = (aiohttp.ClientError, TimeoutError, _ServerBusy)


class CoordinatorClient:
    """Typed calls to the coordinator, with a bearer key and a session of its own.

    The platform session is sized for the crawl; keeping the coordinator's calls on a
    separate small session means heartbeats never queue behind API requests.
    """

    def __init__(self, base_url: str, api_key: str, worker_id: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.worker_id = worker_id
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> CoordinatorClient:
        self._session = aiohttp.ClientSession(
            headers=self._headers,
            timeout=aiohttp.ClientTimeout(total=30),
            connector=aiohttp.TCPConnector(limit=16),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(
        self,
        method: str,
        path: str,
        body: BaseModel | None,
        model: type[ModelT] | None,
        *,
        params: dict[str, str] | None = None,
    ) -> ModelT | None:
        assert self._session is not None, "use the client as an async context manager"
        url = self.base_url + path
        data = body.model_dump(mode="json") if body is not None else None
        retrying = AsyncRetrying(
            stop=stop_after_attempt(_ATTEMPTS),
            wait=wait_random_exponential(multiplier=0.2, max=5.0),
            retry=retry_if_exception_type(_TRANSIENT),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._once(method, url, path, data, model, params)
        except _TRANSIENT as exc:
            raise CoordinatorError(f"coordinator unreachable at {url}: {exc}") from exc
        raise AssertionError("tenacity ends in a result or an exception")  # pragma: no cover

    async def _once(
        self,
        method: str,
        url: str,
        path: str,
        data: Any,
        model: type[ModelT] | None,
        params: dict[str, str] | None,
    ) -> ModelT | None:
        """One request; a transient failure raises one of :data:`_TRANSIENT`."""
        assert self._session is not None
        async with self._session.request(method, url, json=data, params=params) as resp:
            if resp.status == 409:
                raise LeaseLost(f"{path}: lease is no longer ours")
            if resp.status in (401, 403):
                # Retrying cannot help: the key is wrong, revoked or not a worker's.
                raise ConfigError(f"the coordinator refused the worker key (HTTP {resp.status})")
            if resp.status >= 500:
                raise _ServerBusy(f"{method} {path}: HTTP {resp.status}")
            if resp.status >= 400:
                text = (await resp.text())[:300]
                raise CoordinatorError(f"{method} {path}: HTTP {resp.status}: {text}")
            if model is None:
                return None
            payload: Any = await resp.json(content_type=None)
        try:
            return model.model_validate(payload)
        except ValidationError as exc:
            raise CoordinatorError(f"{method} {path}: unexpected body: {exc}") from exc

    async def _must(
        self, method: str, path: str, body: BaseModel | None, model: type[ModelT], **kw: Any
    ) -> ModelT:
        result = await self._call(method, path, body, model, **kw)
        assert result is not None
        return result

    async def lease(
        self, kinds: tuple[str, ...], max_units: int, wait_s: float = 0.0
    ) -> LeaseResponse:
        """Claim up to ``max_units`` units; with none leasable, wait up to ``wait_s`` for one."""
        body = LeaseRequest(
            worker_id=self.worker_id,
            kinds=kinds,  # type: ignore[arg-type]
            max_units=max_units,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            wait_s=wait_s,
        )
        return await self._must("POST", "/v1/leases", body, LeaseResponse)

    async def heartbeat(
        self, unit_id: int, token: int, cursor: str | None, rows: int
    ) -> HeartbeatResponse:
        """Extend a lease and checkpoint its cursor (:class:`LeaseLost` on 409)."""
        body = HeartbeatRequest(worker_id=self.worker_id, token=token, cursor=cursor, rows=rows)
        return await self._must("POST", f"/v1/leases/{unit_id}/heartbeat", body, HeartbeatResponse)

    async def complete(
        self,
        unit_id: int,
        token: int,
        rows: int,
        discovered_user_ids: list[int] | None = None,
        discovered_track_ids: list[int] | None = None,
    ) -> UnitStateResponse:
        """Report a unit done (its rows are committed)."""
        body = CompleteRequest(
            worker_id=self.worker_id,
            token=token,
            rows=rows,
            discovered_user_ids=discovered_user_ids or [],
            discovered_track_ids=discovered_track_ids or [],
        )
        return await self._must("POST", f"/v1/leases/{unit_id}/complete", body, UnitStateResponse)

    async def fail(
        self,
        unit_id: int,
        token: int,
        error: str,
        retryable: bool,
        rows: int = 0,
        cursor: str | None = None,
    ) -> UnitStateResponse:
        """Report a unit failed (retried with backoff by the coordinator if retryable).

        ``cursor`` is where the retry resumes: the pages landed since the last
        heartbeat are not fetched again.
        """
        body = FailRequest(
            worker_id=self.worker_id,
            token=token,
            error=error[:4000],
            retryable=retryable,
            rows=rows,
            cursor=cursor,
        )
        return await self._must("POST", f"/v1/leases/{unit_id}/fail", body, UnitStateResponse)

    async def release(
        self, unit_id: int, token: int, cursor: str | None, rows: int = 0
    ) -> UnitStateResponse:
        """Give a unit back with its resume cursor and the rows it landed (SIGTERM drain)."""
        body = ReleaseRequest(worker_id=self.worker_id, token=token, cursor=cursor, rows=rows)
        return await self._must("POST", f"/v1/leases/{unit_id}/release", body, UnitStateResponse)

    async def client_id(self) -> ClientIdState:
        """The fleet's client_id, or an instruction to discover one (single flight)."""
        return await self._must(
            "GET",
            "/v1/client-ids/current",
            None,
            ClientIdState,
            params={"worker_id": self.worker_id},
        )

    async def report_client_id(self, value: str, source: str) -> None:
        """Tell the fleet about a discovered client_id."""
        body = ClientIdReport(value=value, source=source, worker_id=self.worker_id)  # type: ignore[arg-type]
        await self._call("POST", "/v1/client-ids", body, None)

    async def invalidate_client_id(self, value: str) -> None:
        """Report that the platform refused ``value`` (401/403)."""
        body = InvalidateRequest(worker_id=self.worker_id)
        await self._call("POST", f"/v1/client-ids/{quote(value, safe='')}/invalidate", body, None)

    async def advice(self) -> FleetAdvice:
        """This worker's budget share, the fleet pause and the client_id, now."""
        params = {"worker_id": self.worker_id}
        return await self._must("GET", "/v1/fleet/advice", None, FleetAdvice, params=params)

    async def throttled(self, retry_after_s: float | None) -> None:
        """Report a 429 so the coordinator can shrink the fleet's budget."""
        if retry_after_s is not None:
            retry_after_s = min(3600.0, max(0.0, retry_after_s))
        body = ThrottleReport(worker_id=self.worker_id, retry_after_s=retry_after_s)
        await self._call("POST", "/v1/fleet/throttle", body, None)

    async def blocked(self, reason: str) -> float:
        """Report a bot-protection block; returns the seconds the fleet now pauses."""
        body = BlockReport(worker_id=self.worker_id, reason=reason[:500])
        state = await self._must("POST", "/v1/fleet/block", body, BlockState)
        return state.wait_s

    async def healthy(self) -> bool:
        """True when the coordinator answers ``/healthz``."""
        assert self._session is not None
        try:
            async with self._session.get(self.base_url + "/healthz") as resp:
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False
