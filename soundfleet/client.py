"""A small client of the coordinator's researcher API (jobs), used by the CLI and demo.

Transport and HTTP errors become :class:`~schemas.errors.SoundfleetError` subclasses
with one readable line: a coordinator that is down, a refused key, a rejected spec.
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any

import aiohttp

from schemas.errors import ConfigError, InputError, NotFoundError, SoundfleetError
from schemas.jobs import JobList, JobView


class CoordinatorError(SoundfleetError):
    """The coordinator could not be reached or answered with an error."""


def _explain(status: int, body: str) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:200] or f"HTTP {status}"
    message = str(data.get("message") or data.get("error") or data)
    fields = data.get("fields") or []
    if fields:
        message += ": " + "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return message


class CoordinatorClient:
    """``async with CoordinatorClient(url, key) as c: await c.submit(...)``."""

    def __init__(self, base_url: str, api_key: str | None, *, timeout_s: float = 30.0) -> None:
        if not api_key:
            raise ConfigError("no API key: set SOUNDFLEET_API_KEY (or pass --key)")
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> CoordinatorClient:
        self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        """One JSON request; returns the decoded body or raises a one-line error."""
        assert self._session is not None, "use the client as an async context manager"
        url = f"{self.base_url}{path}"
        try:
            async with self._session.request(method, url, json=body) as resp:
                text = await resp.text()
                if resp.status in (401, 403):
                    why = _explain(resp.status, text)
                    raise CoordinatorError(
                        f"the coordinator refused the key ({resp.status}): {why}"
                    )
                if resp.status == 404:
                    raise NotFoundError(_explain(resp.status, text))
                if resp.status in (400, 409, 413, 415, 422):
                    raise InputError(_explain(resp.status, text))
                if resp.status >= 400:
                    raise CoordinatorError(
                        f"coordinator error {resp.status}: {_explain(resp.status, text)}"
                    )
                return json.loads(text) if text else None
        except aiohttp.ClientConnectionError as exc:
            raise CoordinatorError(f"the coordinator at {self.base_url} is down: {exc}") from exc
        except TimeoutError as exc:
            raise CoordinatorError(f"the coordinator at {self.base_url} timed out") from exc

    async def submit(self, kind: str, spec: dict[str, Any], **extra: Any) -> JobView:
        """Submit a job; returns it with its progress."""
        body = await self.request("POST", "/v1/jobs", {"kind": kind, "spec": spec, **extra})
        return JobView.model_validate(body)

    async def job(self, job_id: int) -> JobView:
        """One job with its progress."""
        return JobView.model_validate(await self.request("GET", f"/v1/jobs/{job_id}"))

    async def jobs(self, **filters: Any) -> JobList:
        """The newest jobs visible to this key (filters: state, kind, limit, before)."""
        query = "&".join(f"{k}={v}" for k, v in filters.items() if v is not None)
        return JobList.model_validate(await self.request("GET", f"/v1/jobs?{query}"))

    async def cancel(self, job_id: int) -> JobView:
        """Cancel a job: queued units at once, leased ones at their next heartbeat."""
        return JobView.model_validate(await self.request("POST", f"/v1/jobs/{job_id}/cancel"))
