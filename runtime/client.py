"""The one client of the coordinator's HTTP API: researchers' jobs and workers' leases.

Bodies are the models of :mod:`schemas.jobs` and :mod:`schemas.work`. A coordinator
restarting behind a Service (connection refused, a timeout, a 5xx) is asked again, a
few times with full jitter so a fleet does not retry in step; then
:class:`~schemas.errors.CoordinatorError`. Every other answer is converted here, once,
into the error hierarchy with one readable line: a refused key is a
:class:`~schemas.errors.ConfigError`, a lease re-issued meanwhile
:class:`~schemas.errors.LeaseLost`, a rejected body :class:`RequestRefused` (an
:class:`~schemas.errors.InputError`), a missing job :class:`UnknownObject`.
"""

from __future__ import annotations

import json
import os
import socket
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
from pydantic import BaseModel, ValidationError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

from schemas.errors import ConfigError, CoordinatorError, InputError, LeaseLost, NotFoundError
from schemas.jobs import JobList, JobView
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

ModelT = TypeVar("ModelT", bound=BaseModel)

ATTEMPTS = 5


class RequestRefused(CoordinatorError, InputError):
    """The coordinator refused a request's body or parameters (400, 413, 415, 422)."""


class UnknownObject(CoordinatorError, NotFoundError):
    """The job, unit or client_id asked about does not exist (404)."""


class _ServerBusy(Exception):
    """A 5xx from the coordinator: worth another try."""


_TRANSIENT = (aiohttp.ClientConnectionError, TimeoutError, _ServerBusy)


def _explain(status: int, body: str) -> str:
    """The coordinator's error body as one line (its message and the fields it names)."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:300] or f"HTTP {status}"
    if not isinstance(data, dict):
        return str(data)[:300]
    message = str(data.get("message") or data.get("error") or data)
    fields = data.get("fields") or []
    if fields:
        message += ": " + "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return message


class CoordinatorClient:
    """``async with CoordinatorClient(url, key) as c: await c.submit(...)``.

    A worker passes its ``worker_id`` and uses the lease calls. Its session is its
    own and small: the crawl's platform session is sized for the crawl, and
    heartbeats must never queue behind API requests.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        worker_id: str | None = None,
        *,
        timeout_s: float = 30.0,
        attempts: int = ATTEMPTS,
    ) -> None:
        if not api_key:
            raise ConfigError("no API key: set SOUNDFLEET_API_KEY (or pass --key)")
        self.base_url = base_url.rstrip("/")
        self._worker_id = worker_id
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._attempts = attempts
        self._session: aiohttp.ClientSession | None = None

    @property
    def worker_id(self) -> str:
        """The worker this client speaks for (lease calls need one)."""
        if self._worker_id is None:
            raise ConfigError("a lease call needs a worker_id: CoordinatorClient(..., worker_id)")
        return self._worker_id

    async def __aenter__(self) -> CoordinatorClient:
        self._session = aiohttp.ClientSession(
            headers=self._headers,
            timeout=self._timeout,
            connector=aiohttp.TCPConnector(limit=16),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()

    # ------------------------------------------------------------------ transport

    async def request(
        self, method: str, path: str, body: Any = None, *, params: dict[str, str] | None = None
    ) -> Any:
        """One JSON request (retried while transient); the decoded body or one error."""
        url = self.base_url + path
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_random_exponential(multiplier=0.2, max=5.0),
            retry=retry_if_exception_type(_TRANSIENT),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._once(method, url, path, body, params)
        except _TRANSIENT as exc:
            raise CoordinatorError(
                f"the coordinator at {self.base_url} is down or unreachable "
                f"({method} {path}): {exc or type(exc).__name__}"
            ) from exc
        raise AssertionError("tenacity ends in a result or an exception")  # pragma: no cover

    async def _once(
        self, method: str, url: str, path: str, body: Any, params: dict[str, str] | None
    ) -> Any:
        """One request; a transient failure raises one of :data:`_TRANSIENT`."""
        assert self._session is not None, "use the client as an async context manager"
        async with self._session.request(method, url, json=body, params=params) as resp:
            if resp.status >= 500:
                raise _ServerBusy(f"HTTP {resp.status}")
            text = await resp.text()
            status = resp.status
        if status < 400:
            try:
                return json.loads(text) if text else None
            except ValueError as exc:
                raise CoordinatorError(f"{method} {path}: a body that is not JSON") from exc
        why = _explain(status, text)
        if status in (401, 403):
            # Retrying cannot help: the key is wrong, revoked or not of this role.
            raise ConfigError(f"the coordinator refused the key (HTTP {status}): {why}")
        if status == 409 and path.startswith("/v1/leases/"):
            raise LeaseLost(f"{path}: the lease is no longer ours ({why})")
        if status == 404:
            raise UnknownObject(why)
        if status in (400, 409, 413, 415, 422):
            raise RequestRefused(f"{method} {path}: {why}")
        raise CoordinatorError(f"{method} {path}: HTTP {status}: {why}")

    async def _call(
        self,
        method: str,
        path: str,
        body: BaseModel | None,
        model: type[ModelT],
        *,
        params: dict[str, str] | None = None,
    ) -> ModelT:
        data = body.model_dump(mode="json") if body is not None else None
        payload = await self.request(method, path, data, params=params)
        try:
            return model.model_validate(payload)
        except ValidationError as exc:
            raise CoordinatorError(f"{method} {path}: unexpected body: {exc}") from exc

    async def _send(self, method: str, path: str, body: BaseModel) -> None:
        await self.request(method, path, body.model_dump(mode="json"))

    # ------------------------------------------------------------------ researchers

    async def submit(self, kind: str, spec: dict[str, Any], **extra: Any) -> JobView:
        """Submit a job; returns it with its progress."""
        body = await self.request("POST", "/v1/jobs", {"kind": kind, "spec": spec, **extra})
        return JobView.model_validate(body)

    async def job(self, job_id: int) -> JobView:
        """One job with its progress."""
        return await self._call("GET", f"/v1/jobs/{job_id}", None, JobView)

    async def jobs(self, **filters: Any) -> JobList:
        """The newest jobs visible to this key (filters: state, kind, limit, before)."""
        query = {k: str(v) for k, v in filters.items() if v is not None}
        return await self._call("GET", "/v1/jobs", None, JobList, params=query)

    async def cancel(self, job_id: int) -> JobView:
        """Cancel a job: queued units at once, leased ones at their next heartbeat."""
        return await self._call("POST", f"/v1/jobs/{job_id}/cancel", None, JobView)

    # ------------------------------------------------------------------ workers

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
        return await self._call("POST", "/v1/leases", body, LeaseResponse)

    async def heartbeat(
        self, unit_id: int, token: int, cursor: str | None, rows: int
    ) -> HeartbeatResponse:
        """Extend a lease and checkpoint its cursor (:class:`LeaseLost` on 409)."""
        body = HeartbeatRequest(worker_id=self.worker_id, token=token, cursor=cursor, rows=rows)
        return await self._call("POST", f"/v1/leases/{unit_id}/heartbeat", body, HeartbeatResponse)

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
        return await self._call("POST", f"/v1/leases/{unit_id}/complete", body, UnitStateResponse)

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
        return await self._call("POST", f"/v1/leases/{unit_id}/fail", body, UnitStateResponse)

    async def release(
        self, unit_id: int, token: int, cursor: str | None, rows: int = 0
    ) -> UnitStateResponse:
        """Give a unit back with its resume cursor and the rows it landed (SIGTERM drain)."""
        body = ReleaseRequest(worker_id=self.worker_id, token=token, cursor=cursor, rows=rows)
        return await self._call("POST", f"/v1/leases/{unit_id}/release", body, UnitStateResponse)

    async def client_id(self) -> ClientIdState:
        """The fleet's client_id, or an instruction to discover one (single flight)."""
        return await self._call(
            "GET",
            "/v1/client-ids/current",
            None,
            ClientIdState,
            params={"worker_id": self.worker_id},
        )

    async def report_client_id(self, value: str, source: str) -> None:
        """Tell the fleet about a discovered client_id."""
        body = ClientIdReport(value=value, source=source, worker_id=self.worker_id)  # type: ignore[arg-type]
        await self._send("POST", "/v1/client-ids", body)

    async def invalidate_client_id(self, value: str) -> None:
        """Report that the platform refused ``value`` (401/403)."""
        body = InvalidateRequest(worker_id=self.worker_id)
        await self._send("POST", f"/v1/client-ids/{quote(value, safe='')}/invalidate", body)

    async def advice(self) -> FleetAdvice:
        """This worker's budget share, the fleet pause and the client_id, now."""
        params = {"worker_id": self.worker_id}
        return await self._call("GET", "/v1/fleet/advice", None, FleetAdvice, params=params)

    async def throttled(self, retry_after_s: float | None) -> None:
        """Report a 429 so the coordinator can shrink the fleet's budget."""
        if retry_after_s is not None:
            retry_after_s = min(3600.0, max(0.0, retry_after_s))
        body = ThrottleReport(worker_id=self.worker_id, retry_after_s=retry_after_s)
        await self._send("POST", "/v1/fleet/throttle", body)

    async def blocked(self, reason: str) -> float:
        """Report a bot-protection block; returns the seconds the fleet now pauses."""
        body = BlockReport(worker_id=self.worker_id, reason=reason[:500])
        state = await self._call("POST", "/v1/fleet/block", body, BlockState)
        return state.wait_s

    async def healthy(self) -> bool:
        """True when the coordinator answers ``/healthz``."""
        assert self._session is not None
        try:
            async with self._session.get(self.base_url + "/healthz") as resp:
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False
