"""``soundfleet smoke --live``: a few polite requests to see the platform as it is today.

Before a fleet is pointed at the real api-v2, one operator run shows what the platform
answers now: whether discovery still finds a client_id, which status and bot-protection
headers come back, and which cursor forms the lists use. It sends at most
``max_requests`` requests (default 20), one a second, each once: no retries, no
rediscovery, so a block is seen, never deepened.

Only the command with ``--live`` reaches the real host; tests run :func:`run_smoke`
against the simulator.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from crawler.cursors import href_cursor, with_client_id, without_params
from crawler.discovery import (
    app_version_of,
    client_id_from_bundle,
    client_id_from_hydration,
    script_urls,
)
from crawler.rejections import classify_rejection
from crawler.transport import BrowserProfile, Response, Transport

# Response headers worth showing: the bot protection's, the throttle's, the cache's.
_SHOWN_HEADERS = (
    "content-type",
    "date",
    "retry-after",
    "x-datadome",
    "x-dd-b",
    "x-cache",
    "via",
    "server",
    "cf-ray",
)
_BODY_LIMIT = 8 * 1024 * 1024


_Get = Callable[..., Awaitable[Any]]


class RequestBudgetSpent(Exception):
    """The smoke run's request cap is reached (ends the run, reported, never raised out)."""


@dataclass
class SmokeConfig:
    """What one smoke run may send, and where."""

    api_base: str = "https://api-v2.soundcloud.com"
    web_base: str = "https://soundcloud.com"
    user: str = "soundcloud"
    max_requests: int = 20
    interval_s: float = 1.0
    page_limit: int = 20


@dataclass
class Step:
    """One request of the run and what came back."""

    name: str
    url: str
    status: int | None = None
    outcome: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    cookies_set: list[str] = field(default_factory=list)
    cursor_format: str | None = None
    cursor_has_time: bool | None = None
    items: int | None = None
    error: str | None = None


class _PacedTransport:
    """The transport, at most ``cap`` requests and one per ``interval_s``."""

    def __init__(self, inner: Transport, cap: int, interval_s: float) -> None:
        self.inner, self.cap, self.interval_s = inner, cap, interval_s
        self.sent = 0
        self._last = float("-inf")

    async def get(self, url: str) -> Response:
        if self.sent >= self.cap:
            raise RequestBudgetSpent(f"the cap of {self.cap} requests is reached")
        wait = self._last + self.interval_s - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self.sent += 1
        self._last = time.monotonic()
        return await self.inner.get(url, max_bytes=_BODY_LIMIT)


def _shown(url: str) -> str:
    """``url`` without its client_id (a run's output is pasted into issues)."""
    return without_params(url, ("client_id",))


def _outcome(resp: Response) -> str:
    if resp.status == 200:
        return "ok"
    if resp.status in (401, 403):
        kind, reason = classify_rejection(resp.status, resp.headers, resp.body)
        return f"{kind}: {reason}"
    if resp.status == 429:
        return "throttled" + ("" if "Retry-After" in resp.headers else " (no Retry-After)")
    return f"HTTP {resp.status}"


def _record(step: Step, resp: Response, as_text: bool) -> Any:
    """Fill ``step`` from ``resp``; the body as text, or decoded JSON (None: neither)."""
    step.status = resp.status
    step.outcome = _outcome(resp)
    step.headers = {k.lower(): v for k, v in resp.headers.items() if k.lower() in _SHOWN_HEADERS}
    step.cookies_set = sorted(
        {v.split("=", 1)[0] for k, v in resp.headers.items() if k.lower() == "set-cookie"}
    )
    if resp.status != 200:
        return None
    if as_text:
        return resp.body.decode("utf-8", "replace")
    try:
        data = json.loads(resp.body)
    except ValueError:
        step.outcome = "ok, but not JSON"
        return None
    if isinstance(data, dict) and "collection" in data:
        step.items = len(data["collection"]) if isinstance(data["collection"], list) else None
        reading = href_cursor(data.get("next_href"))
        if reading is not None:
            step.cursor_format = reading.format
            step.cursor_has_time = reading.time is not None
    return data


async def run_smoke(cfg: SmokeConfig, transport: Transport, profile: BrowserProfile) -> list[Step]:
    """Discovery, one user, one page of each list, web-profiles both ways; the steps."""
    paced = _PacedTransport(transport, cfg.max_requests, cfg.interval_s)
    steps: list[Step] = []

    async def get(name: str, url: str, as_text: bool = False) -> Any:
        step = Step(name, _shown(url))
        steps.append(step)
        try:
            resp = await paced.get(url)
        except RequestBudgetSpent:
            steps.pop()
            raise
        except Exception as exc:  # a smoke run reports every failure and goes on
            step.outcome, step.error = "error", f"{type(exc).__name__}: {exc}"
            return None
        return _record(step, resp, as_text)

    try:
        client_id = await _discover(cfg, get, profile, steps)
        if client_id is None:
            return steps
        api = cfg.api_base.rstrip("/")

        def url(path: str, **params: Any) -> str:
            query = "&".join(f"{k}={v}" for k, v in params.items())
            full = f"{api}{path}" + (f"?{query}" if query else "")
            return with_client_id(full, client_id) + profile.query_suffix()

        target = cfg.user
        if not target.isdigit():
            user = await get("resolve user", url("/resolve", url=f"{cfg.web_base}/{target}"))
            target = str(user["id"]) if isinstance(user, dict) and "id" in user else ""
        else:
            await get("user", url(f"/users/{target}"))
        if not target:
            return steps
        tracks = None
        for name in ("followers", "followings", "tracks", "likes"):
            page = await get(
                name, url(f"/users/{target}/{name}", limit=cfg.page_limit, linked_partitioning=1)
            )
            if name == "tracks":
                tracks = page
        await get("web-profiles (URN)", url(f"/users/soundcloud:users:{target}/web-profiles"))
        await get("web-profiles (numeric)", url(f"/users/{target}/web-profiles"))
        first = _first_track_id(tracks)
        if first is not None:
            for name in ("reposters", "likers"):
                await get(
                    f"track {name}",
                    url(f"/tracks/{first}/{name}", limit=cfg.page_limit, linked_partitioning=1),
                )
    except RequestBudgetSpent as exc:
        steps.append(Step("stopped", "", outcome=str(exc)))
    return steps


async def _discover(
    cfg: SmokeConfig, get: _Get, profile: BrowserProfile, steps: list[Step]
) -> str | None:
    """The client_id from the homepage's hydration, else from its last script bundles."""
    page = cfg.web_base.rstrip("/") + "/"
    step_count = len(steps)
    home = await get("homepage", page, as_text=True)
    if home is None:
        return None
    version = app_version_of(home)
    if version:
        profile.app_version = version
    found = client_id_from_hydration(home)
    steps[step_count].outcome += f"; client_id {'found' if found else 'not found'} in hydration"
    if found:
        return found
    for script in reversed(script_urls(home, page)[-3:]):
        source = await get("script bundle", script, as_text=True)
        found = client_id_from_bundle(source or "")
        if found:
            steps[-1].outcome += "; client_id found"
            return found
    return None


def _first_track_id(page: Any) -> int | None:
    if not isinstance(page, dict) or not isinstance(page.get("collection"), list):
        return None
    for item in page["collection"]:
        if isinstance(item, dict) and isinstance(item.get("id"), int):
            return int(item["id"])
    return None


def summary(steps: list[Step]) -> dict[str, Any]:
    """The run as JSON: each step, the cursor forms seen, whether anything blocked us."""
    forms = sorted({s.cursor_format for s in steps if s.cursor_format})
    return {
        "requests": sum(1 for s in steps if s.status is not None or s.error is not None),
        "blocked": any(s.outcome.startswith("blocked") for s in steps),
        "throttled": any(s.outcome.startswith("throttled") for s in steps),
        "cursor_formats": forms,
        "steps": [asdict(s) for s in steps],
    }


__all__ = ["SmokeConfig", "Step", "run_smoke", "summary"]
