"""The platform HTTP client: one session, bounded concurrency, retries, politeness.

Every request goes through :meth:`ApiClient.fetch`:

* the local token bucket (this worker's share of the fleet budget, and any pause a
  429 imposed) is waited for first;
* the current client_id is (re-)set on the URL, so a request resumed after a
  rediscovery carries the new id, and a ``next_href`` that dropped it gets it back;
* connection errors, timeouts, 5xx and malformed bodies are retried with exponential
  backoff and full jitter (tenacity); 429 waits its ``Retry-After`` (reported to the
  coordinator), or, without one, a wait that starts at the policy's default (30 s on
  the real host) and doubles while 429s keep coming;
* a rejection is classified (:func:`classify_rejection`): an invalid client_id (401,
  api-v2's JSON error) is reported and replaced once; a block (a DataDome or HTML
  403, or one of unknown shape) pauses the fleet through the coordinator with growing
  backoff, and the client_id is kept;
* bodies are read under a size cap (:class:`~crawler.errors.BodyTooLarge` past it);
* redirects are not followed: the API never redirects a JSON request, and following
  one could leave the API host.

Requests go out through a :class:`~crawler.transport.Transport` with the web client's
headers (:class:`~crawler.transport.BrowserProfile`), ``app_version`` included.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, TypeVar, cast
from urllib.parse import quote

import aiohttp
import structlog
from pydantic import BaseModel, ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type
from tenacity.wait import wait_random_exponential
from yarl import URL

from crawler.clientids import ClientIdProvider
from crawler.cursors import check_on_api_host, with_client_id
from crawler.deadlines import Deadlines
from crawler.errors import (
    Blocked,
    BodyTooLarge,
    ClientIdRejected,
    MalformedBody,
    OffHostError,
    RateLimited,
    TransientError,
    UnexpectedResponse,
)
from crawler.metrics import WorkerMetrics
from crawler.ratelimit import TokenBucket
from crawler.rejections import BlockBackoff, classify_rejection
from crawler.transport import BrowserProfile, Transport
from schemas.errors import PayloadError

log = structlog.get_logger("crawler.http")

T = TypeVar("T")


class BodyParser(Protocol):
    """A parser of raw body bytes (e.g. :class:`schemas.api_v2.ListPageParser`)."""

    def parse_body(self, body: bytes) -> Any:
        """The value of ``body``; raises :class:`PayloadError` when it does not fit."""
        ...


Parser = type[BaseModel] | BodyParser | Callable[[Any], Any] | None
"""How to turn a body into a value: a pydantic model (validated straight from the JSON
bytes, the fast path), a :class:`BodyParser` of the bytes, a function of the decoded
JSON, or None for the decoded JSON."""

_STATUS = {code: str(code) for code in (200, 404, 429, 500, 502, 503)}

GONE: Any = object()
"""Returned by :meth:`ApiClient.fetch` (as ``.data``) for a 404 (a gone or never-assigned id)."""


# Characters of an already percent-encoded path and query (no fragment, no spaces, no
# non-ASCII): a URL made only of these needs no re-quoting by yarl.
_ENCODED_TAIL = re.compile(r"[A-Za-z0-9\-._~/?&=%:@!$'()*+,;]*")


@dataclass(slots=True)
class Fetched:
    """A parsed body and the response's headers (the ``Date`` header is the platform's clock)."""

    data: Any
    headers: Mapping[str, str] | None = None

    @property
    def date(self) -> datetime | None:
        """The ``Date`` header as a time (read on demand: most callers never ask)."""
        return _http_date(self.headers.get("Date") if self.headers is not None else None)


class Lane:
    """One request slot held across a run of requests by one task (:meth:`ApiClient.lane`).

    ``async with api.lane() as lane: await lane.fetch(url, parser)``: the lane's
    requests are the client's, on the slot the lane holds.
    """

    __slots__ = ("_client", "_slots", "task")

    def __init__(self, client: ApiClient, slots: asyncio.Semaphore) -> None:
        self._client = client
        self._slots = slots
        self.task: asyncio.Task[Any] | None = None

    def fetch(
        self, url: str, parse: Parser = None, *, not_found_ok: bool = True
    ) -> Coroutine[Any, Any, Fetched]:
        """:meth:`ApiClient.fetch` on this lane's slot (no coroutine of its own)."""
        return self._client.fetch(url, parse, not_found_ok=not_found_ok, lane=self)

    async def __aenter__(self) -> Lane:
        await self._slots.acquire()
        self.task = asyncio.current_task()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.task = None
        self._slots.release()


@dataclass(frozen=True)
class RetryPolicy:
    """How many failures of each kind one request absorbs, and how long it waits."""

    max_retries: int = 6
    max_throttle_waits: int = 60
    max_rejections: int = 5
    max_block_waits: int = 12
    backoff_base_s: float = 0.2
    backoff_max_s: float = 10.0
    throttle_default_s: float = 1.0
    throttle_max_s: float = 1800.0
    block_base_s: float = 60.0
    block_max_s: float = 1800.0
    max_body_bytes: int = 32 * 1024 * 1024


def parse_retry_after(value: str | None, default: float = 1.0) -> float:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return default
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - time.time())


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


class _Counters:
    """Failures of one request by kind (for the stop condition)."""

    __slots__ = ("blocks", "rejections", "throttles", "transient")

    def __init__(self) -> None:
        self.transient = 0
        self.throttles = 0
        self.rejections = 0
        self.blocks = 0


class ApiClient:
    """GET JSON from the platform API with every politeness and recovery rule applied."""

    def __init__(
        self,
        transport: Transport,
        api_base: str,
        client_ids: ClientIdProvider,
        *,
        concurrency: int,
        timeout_s: float = 30.0,
        bucket: TokenBucket | None = None,
        policy: RetryPolicy | None = None,
        metrics: WorkerMetrics | None = None,
        profile: BrowserProfile | None = None,
        on_throttle: Callable[[float], Awaitable[None]] | None = None,
        on_block: Callable[[str], Awaitable[float]] | None = None,
    ) -> None:
        self.transport = transport
        self.api_base = api_base
        self.client_ids = client_ids
        self.bucket = bucket or TokenBucket(0)
        self.policy = policy or RetryPolicy()
        self.metrics = metrics
        self.profile = profile or BrowserProfile()
        self._on_throttle = on_throttle
        self._on_block = on_block
        self._local_blocks = BlockBackoff(self.policy.block_base_s, self.policy.block_max_s)
        self._blocked_until = 0.0
        # Until the first request is answered (see _attempt); None afterwards.
        self._first_answer: asyncio.Event | None = asyncio.Event()
        self._first_sent = False
        self._throttle_streak = 0
        self._recovering = False  # a 429 streak or a block to reset at the next 200
        # When a known-live user last answered (the handlers' guard against a platform
        # that answers 404 to everything).
        self.live_confirmed_at = float("-inf")
        self._max_bytes = self.policy.max_body_bytes
        self._slots = asyncio.Semaphore(concurrency)
        self._background: set[asyncio.Task[None]] = set()
        self._last_report = float("-inf")
        self._stats = metrics.requests if metrics is not None else None
        # The request timeout is enforced by coarse deadlines instead of a timer per
        # request (see crawler.deadlines).
        self._deadlines = Deadlines(timeout_s or math.inf)
        base = URL(api_base)
        self._origin = f"{base.scheme}://{base.raw_authority}"
        self._scheme, self._authority = base.scheme, base.raw_authority
        # The query tail of the last client_id and app version (see _target).
        self._tail: tuple[str | None, str | None, str | None] = (None, None, None)
        self._backoff = wait_random_exponential(
            multiplier=self.policy.backoff_base_s, max=self.policy.backoff_max_s
        )

    # ------------------------------------------------------------------ retry policy

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited):
            return exc.retry_after  # the token bucket holds every other request too
        if isinstance(exc, Blocked):
            return exc.wait_s
        if isinstance(exc, ClientIdRejected):
            return 0.0  # the next attempt waits for the replacement id itself
        return float(self._backoff(state))

    def _stopper(self, counters: _Counters) -> Callable[[RetryCallState], bool]:
        policy = self.policy

        def stop(state: RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, RateLimited):
                counters.throttles += 1
                return counters.throttles > policy.max_throttle_waits
            if isinstance(exc, Blocked):
                counters.blocks += 1
                return counters.blocks > policy.max_block_waits
            if isinstance(exc, ClientIdRejected):
                counters.rejections += 1
                return counters.rejections > policy.max_rejections
            counters.transient += 1
            return counters.transient > policy.max_retries

        return stop

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        reason = (
            "throttled"
            if isinstance(exc, RateLimited)
            else "blocked"
            if isinstance(exc, Blocked)
            else "client_id"
            if isinstance(exc, ClientIdRejected)
            else "malformed"
            if isinstance(exc, MalformedBody)
            else "transient"
        )
        if self.metrics is not None:
            self.metrics.retries.labels(reason).inc()
        log.debug("request_retry", reason=reason, attempt=state.attempt_number, error=str(exc))

    # ------------------------------------------------------------------ requests

    def fetch(
        self,
        url: str,
        parse: Parser = None,
        *,
        not_found_ok: bool = True,
        lane: Lane | None = None,
    ) -> Coroutine[Any, Any, Fetched]:
        """GET ``url`` (on the API host) and return its decoded, parsed body (awaitable).

        ``parse`` validates the decoded JSON (for example ``lambda d: parse(UserPage, d)``);
        a :class:`PayloadError` from it counts as a malformed body and is retried. A 404
        returns :data:`GONE` when ``not_found_ok``. Raises :class:`TransientError` once
        retries are exhausted, :class:`OffHostError` (at once, before any await) or
        :class:`UnexpectedResponse` for requests that must not be retried. ``lane`` is
        set by :meth:`Lane.fetch` only: the request uses that lane's slot instead of
        taking one of its own.
        """
        # The one entry point of every request (callers take ``.data``), and no
        # coroutine of its own: each suspension of a request resumes through every
        # frame on its stack, and this is the path of every user of a sweep.
        check_on_api_host(url, self.api_base)
        return self._attempt(url, parse, not_found_ok, lane, retry=True)

    def lane(self) -> Lane:
        """One request slot held across a run of requests (:meth:`Lane.fetch`).

        A sweep runs more lanes than there are slots, so that while some units' lanes
        wait at a batch boundary the others keep every slot busy. Taking the slot once
        per lane instead of once per request spares each request a contended acquire,
        a suspension and a wake-up (about 5% of a bare request's CPU). A lane keeps
        its slot while one of its requests backs off. Only the task that entered a
        lane may fetch with it (its requests' deadlines are that task's).
        """
        return Lane(self, self._slots)

    async def _retry(
        self,
        url: str,
        parse: Parser,
        not_found_ok: bool,
        lane: Lane | None,
        first: TransientError,
    ) -> Fetched:
        counters = _Counters()
        pending: list[TransientError] = [first]
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TransientError),
            stop=self._stopper(counters),
            wait=self._wait,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if pending:  # replay the first failure so it is waited for and counted
                    raise pending.pop()
                return await self._attempt(url, parse, not_found_ok, lane)
        raise AssertionError("unreachable: tenacity reraises the last error")

    def _target(self, url: str, client_id: str) -> URL | str:
        """What is sent for ``url``: it with ``client_id`` and the web client's version.

        aiohttp parses and re-quotes every string URL (about a tenth of a request's
        CPU), so a URL on the API origin whose path and query are already
        percent-encoded, and that names neither parameter yet (every URL a crawl
        builds, and the platform's ``next_href``), is assembled as a yarl URL from the
        known origin and a query tail kept per client_id and version. Anything else
        takes the general path and goes as a string, for aiohttp's full parse.
        """
        origin = self._origin
        at = len(origin)
        if (
            url.startswith(origin)
            and url[at : at + 1] == "/"
            and "client_id=" not in url
            and "app_version=" not in url
            and _ENCODED_TAIL.fullmatch(url, at)
        ):
            tail = self._tail
            if tail[0] != client_id or tail[1] != self.profile.app_version:
                tail = self._tail = self._query_tail(client_id)
            if tail[2] is not None:
                path, sep, query = url[at:].partition("?")
                return URL.build(
                    scheme=self._scheme,
                    authority=self._authority,
                    path=path,
                    query_string=f"{query}&{tail[2]}" if sep else tail[2],
                    encoded=True,
                )
        sent = with_client_id(url, client_id)
        return sent if "app_version=" in sent else sent + self.profile.query_suffix()

    def _query_tail(self, client_id: str) -> tuple[str, str | None, str | None]:
        """``client_id=…&app_version=…``, percent-encoded (None if they are not safe as is)."""
        version = self.profile.app_version
        tail = f"client_id={quote(client_id, safe='')}{self.profile.query_suffix()}"
        return client_id, version, tail if _ENCODED_TAIL.fullmatch(tail) else None

    async def _attempt(
        self,
        url: str,
        parse: Parser,
        not_found_ok: bool,
        lane: Lane | None,
        retry: bool = False,
    ) -> Fetched:
        """One request; with ``retry`` a transient failure goes on to :meth:`_retry`.

        (The retries' own attempts run without it: a failure ends them.)
        """
        try:
            # Synchronous fast paths first: a token in hand and a known client_id are the
            # common case, and awaiting a coroutine that returns at once still builds one.
            if not self.bucket.try_take():
                await self.bucket.acquire()
            client_id = self.client_ids.known or await self.client_ids.current()
            target = self._target(url, client_id)
            deadlines = self._deadlines
            # A lane's request uses the lane's slot (no context manager: entering one is a
            # coroutine of its own, on every request of a sweep).
            slots = self._slots if lane is None else None
            if slots is not None:
                await slots.acquire()
            first = False
            if self._first_answer is not None:
                # The first request goes alone: its answer sets the bot protection's cookie,
                # which every other request then carries (a fan-out of cookieless requests
                # from a new worker is what a bot looks like).
                if self._first_sent:
                    try:
                        await self._first_answer.wait()
                    except BaseException:
                        if slots is not None:
                            slots.release()
                        raise
                else:
                    self._first_sent = first = True
            started = time.monotonic()
            task = deadlines.start(lane.task if lane is not None else None)
            try:
                resp = await self.transport.get(target, max_bytes=self._max_bytes)
            except (aiohttp.ClientError, TimeoutError) as exc:
                message = f"{type(exc).__name__}: {exc}".rstrip(": ")
                raise self._no_response(url, message, started) from exc
            except BodyTooLarge as exc:
                self._record("too_large", started)
                raise BodyTooLarge(f"GET {url}: {exc}") from exc
            except asyncio.CancelledError:
                if not deadlines.timed_out(task):
                    raise
                message = f"no response within {deadlines.timeout_s:g} s"
                raise self._no_response(url, message, started) from None
            finally:
                deadlines.finish(task)
                if slots is not None:
                    slots.release()
                if first and self._first_answer is not None:
                    self._first_answer.set()
                    self._first_answer = None
            status, headers, body = resp.status, resp.headers, resp.body
            if self._stats is not None:
                self._stats.record(_STATUS.get(status) or str(status), time.monotonic() - started)
            if status == 200:  # the common case, without another coroutine
                if self._recovering:
                    self._recovered()
                return Fetched(
                    self._decode(url, body, headers.get("Content-Type", ""), parse), headers
                )
            data = await self._interpret(url, client_id, status, body, headers, parse, not_found_ok)
            return Fetched(data, headers)
        except TransientError as exc:
            if not retry:
                raise
            # Building a retry controller costs more than a whole successful request,
            # so it is built only once the first attempt has failed.
            return await self._retry(url, parse, not_found_ok, lane, exc)

    def _recovered(self) -> None:
        self._recovering = False
        self._throttle_streak = 0
        self._local_blocks.reset()

    def _record(self, status: str, started: float) -> None:
        if self._stats is not None:
            self._stats.record(status, time.monotonic() - started)

    def _no_response(self, url: str, message: str, started: float) -> TransientError:
        """The retryable error of a request that got no response, counted as one."""
        self._record("error", started)
        return TransientError(f"GET {url}: {message}")

    async def _interpret(
        self,
        url: str,
        client_id: str,
        status: int,
        body: bytes,
        headers: Mapping[str, str],
        parse: Parser,
        not_found_ok: bool,
    ) -> T | Any:
        """The value of a non-200 response, or the error it stands for."""
        if status == 404 and not_found_ok:
            return GONE
        if status in (401, 403):
            kind, reason = classify_rejection(status, headers, body)
            if kind == "blocked":
                raise Blocked(url, reason, await self._blocked(reason))
            await self.client_ids.rejected(client_id)
            raise ClientIdRejected(f"GET {url}: HTTP {status}: client_id refused ({reason})")
        if status == 429:
            header = headers.get("Retry-After")
            if header:
                seconds = parse_retry_after(header, self.policy.throttle_default_s)
            else:
                # No Retry-After (the platform's text "Please slow down."): a wait that
                # doubles while 429s keep coming, reset by the next success.
                seconds = min(
                    self.policy.throttle_max_s,
                    self.policy.throttle_default_s * 2.0 ** min(self._throttle_streak, 20),
                )
                self._throttle_streak += 1
                self._recovering = True
            self.bucket.pause(seconds)
            self._report_throttle(seconds)
            raise RateLimited(url, seconds)
        if status >= 500:
            raise TransientError(f"GET {url}: HTTP {status}")
        if 300 <= status < 400:
            location = headers.get("Location")
            if location:
                try:
                    check_on_api_host(location, self.api_base)
                except OffHostError as exc:
                    raise OffHostError(f"GET {url}: redirect refused: {exc}") from exc
            raise UnexpectedResponse(f"GET {url}: HTTP {status} redirect to {location!r}")
        raise UnexpectedResponse(f"GET {url}: HTTP {status}: {body[:200]!r}")

    async def _blocked(self, reason: str) -> float:
        """Pause for a block, once for every request that meets it; returns the wait (s).

        With a coordinator the pause is the fleet's (its backoff, for every worker);
        without one it is this client's own growing backoff.
        """
        now = time.monotonic()
        if now < self._blocked_until:
            return self._blocked_until - now  # reported already: the same block
        if self.metrics is not None:
            self.metrics.blocks.inc()
        log.warning("platform_blocked", reason=reason)
        seconds = self._local_blocks.next_wait()
        self._recovering = True
        if self._on_block is not None:
            try:
                seconds = await self._on_block(reason)
            except Exception as exc:  # the fleet's pause is lost, ours still holds
                log.warning("block_report_failed", error=str(exc))
        self._blocked_until = time.monotonic() + seconds
        self.bucket.pause(seconds)
        return seconds

    def _decode(self, url: str, body: bytes, content_type: str, parse: Parser) -> T | Any:
        if "html" in content_type.lower():
            raise MalformedBody(f"GET {url}: an HTML page instead of JSON")
        if isinstance(parse, type) and issubclass(parse, BaseModel):
            try:
                return parse.model_validate_json(body)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "(body)"
                what = "malformed JSON" if first["type"] == "json_invalid" else parse.__name__
                raise MalformedBody(f"GET {url}: {what}: field {where}: {first['msg']}") from exc
        parse_body = getattr(parse, "parse_body", None)
        if parse_body is not None:
            try:
                return parse_body(body)
            except PayloadError as exc:
                raise MalformedBody(f"GET {url}: {exc}") from exc
        try:
            data = json.loads(body)
        except json.JSONDecodeError as exc:
            raise MalformedBody(f"GET {url}: malformed JSON ({exc.msg} at {exc.pos})") from exc
        except UnicodeDecodeError as exc:
            raise MalformedBody(f"GET {url}: body is not UTF-8 ({exc.reason})") from exc
        if parse is None:
            return data
        convert = cast(Callable[[Any], Any], parse)
        try:
            return convert(data)
        except PayloadError as exc:
            raise MalformedBody(f"GET {url}: {exc}") from exc

    def _report_throttle(self, seconds: float) -> None:
        # A storm of 429s is one event for the coordinator: report at most once a second.
        now = time.monotonic()
        if self._on_throttle is None or now - self._last_report < 1.0:
            return
        self._last_report = now
        task = asyncio.create_task(self._safe_report(seconds))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _safe_report(self, seconds: float) -> None:
        assert self._on_throttle is not None
        try:
            await self._on_throttle(seconds)
        except Exception as exc:  # a lost throttle report must not fail a request
            log.warning("throttle_report_failed", error=str(exc))
