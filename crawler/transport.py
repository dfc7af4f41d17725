"""The small HTTP-client interface the crawler sends platform requests through.

A :class:`Transport` does one thing: GET a URL with the web client's headers and hand
back status, headers and a body read under a size cap. Two implementations:

* :class:`AiohttpTransport` (the default): the worker's one aiohttp session, with a
  cookie jar kept for the process (the platform's DataDome cookie comes back on every
  request, as a browser's would);
* :class:`ImpersonatingTransport`: curl_cffi, which sends a real browser's TLS and
  HTTP/2 fingerprint (``impersonate="chrome"``), for when header hygiene alone no
  longer gets past the bot protection. Optional (``pip install soundfleet[impersonate]``).

:class:`BrowserProfile` holds what makes a request look like the web client's: the
User-Agent, Origin/Referer, Accept-Language and the page's ``app_version``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from crawler.errors import BodyTooLarge
from schemas.errors import ConfigError

TransportName = Literal["aiohttp", "impersonate"]

DEFAULT_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/142.0.0.0 Safari/537.36"
)
"""A current desktop Chrome's User-Agent (the setting ``user_agent`` replaces it)."""


@dataclass
class BrowserProfile:
    """The headers of the web client's API calls, and the ``app_version`` its page names.

    ``app_version`` is read from the homepage (``window.__sc_version``) by discovery and
    sent as a query parameter, as the web client does.
    """

    user_agent: str = DEFAULT_USER_AGENT
    origin: str = "https://soundcloud.com"
    accept_language: str = "en-US,en;q=0.9"
    app_version: str | None = None
    app_locale: str = "en"
    extra: dict[str, str] = field(default_factory=dict)

    def api_headers(self) -> dict[str, str]:
        """Headers of an XHR from the web client to the API host."""
        return {
            "User-Agent": self.user_agent,
            "Accept": "application/json, text/javascript, */*; q=0.01",
            "Accept-Language": self.accept_language,
            "Origin": self.origin,
            "Referer": self.origin.rstrip("/") + "/",
            **self.extra,
        }

    def query_suffix(self) -> str:
        """``&app_version=…&app_locale=…`` once the version is known, else empty."""
        if not self.app_version:
            return ""
        return f"&app_version={self.app_version}&app_locale={self.app_locale}"


@dataclass(slots=True)
class Response:
    """What a transport hands back: status, headers (case-insensitive) and the body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class Transport(Protocol):
    """GET with a size cap; transport failures raise :class:`aiohttp.ClientError` or
    :class:`TimeoutError` (the impersonating transport converts its own to those)."""

    async def get(self, url: URL | str, *, max_bytes: int) -> Response:
        """GET ``url`` without following redirects; :class:`BodyTooLarge` past ``max_bytes``."""
        ...

    def cookie_header(self, url: str) -> str:
        """The Cookie header this transport would send to ``url`` (for diagnostics)."""
        ...

    def add_cookies(self, cookies: list[dict[str, Any]]) -> None:
        """Adopt cookies a browser collected (``name``, ``value``, ``domain``, ``path``)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def create_session(
    concurrency: int, timeout_s: float, profile: BrowserProfile | None = None
) -> aiohttp.ClientSession:
    """The process's one platform session: a connection pool sized to the concurrency.

    The cookie jar is real (``unsafe`` so a loopback simulator's IP host keeps cookies
    too): the platform's bot protection sets a cookie it expects back.
    """
    connector = aiohttp.TCPConnector(
        limit=concurrency, limit_per_host=concurrency, ttl_dns_cache=300, keepalive_timeout=30
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_s, sock_connect=min(timeout_s, 10.0)),
        headers=(profile or BrowserProfile()).api_headers(),
        cookie_jar=aiohttp.CookieJar(unsafe=True),
        auto_decompress=True,
        raise_for_status=False,
    )


class AiohttpTransport:
    """The default transport: the worker's aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        # The session's total timeout is enforced by the caller's coarse deadlines; a new
        # connection keeps its own connect timeout.
        self._no_timer = aiohttp.ClientTimeout(sock_connect=session.timeout.sock_connect)

    async def get(self, url: URL | str, *, max_bytes: int) -> Response:
        """GET ``url``; the body is read in chunks and abandoned past ``max_bytes``."""
        # Awaited, not entered: ``async with`` adds a coroutine frame that every
        # suspension of the request resumes through (a sweep makes thousands a second).
        resp = await self.session.get(url, allow_redirects=False, timeout=self._no_timer)
        try:
            declared = resp.content_length
            if declared is not None and declared > max_bytes:
                raise BodyTooLarge(f"body of {declared} bytes declared, over the {max_bytes} cap")
            if declared is not None:
                body = await resp.read()
            else:
                body = await _read_capped(resp, max_bytes)
            return Response(resp.status, resp.headers, body)
        finally:
            resp.release()

    def cookie_header(self, url: str) -> str:
        """The Cookie header the jar would send to ``url``."""
        jar = self.session.cookie_jar.filter_cookies(URL(url))
        return "; ".join(f"{k}={m.value}" for k, m in jar.items())

    def add_cookies(self, cookies: list[dict[str, Any]]) -> None:
        """Put browser cookies into the session's jar, each for its own domain."""
        for cookie in cookies:
            domain = str(cookie.get("domain") or "").lstrip(".")
            if not domain or "name" not in cookie:
                continue
            scheme = "https" if cookie.get("secure") else "http"
            self.session.cookie_jar.update_cookies(
                {str(cookie["name"]): str(cookie.get("value", ""))},
                URL(f"{scheme}://{domain}{cookie.get('path') or '/'}"),
            )

    async def close(self) -> None:
        """Close the session."""
        await self.session.close()


async def _read_capped(resp: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(256 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge(f"body over the {max_bytes} byte cap (read {size} so far)")
        chunks.append(chunk)
    return b"".join(chunks)


class ImpersonatingTransport:
    """curl_cffi with a browser's TLS fingerprint (``impersonate``, default ``chrome``)."""

    def __init__(
        self,
        profile: BrowserProfile,
        concurrency: int,
        timeout_s: float,
        impersonate: str = "chrome",
    ) -> None:
        try:
            from curl_cffi.requests import AsyncSession
        except ImportError as exc:  # the optional extra is not installed
            raise ConfigError(
                "transport 'impersonate' needs curl_cffi: pip install 'soundfleet[impersonate]'"
            ) from exc
        self._session: Any = AsyncSession(
            impersonate=impersonate,
            headers=profile.api_headers(),
            max_clients=concurrency,
            timeout=timeout_s,
            allow_redirects=False,
        )

    async def get(self, url: URL | str, *, max_bytes: int) -> Response:
        """GET ``url`` through curl; curl's errors become :class:`aiohttp.ClientError`."""
        from curl_cffi.requests.exceptions import RequestException, Timeout

        try:
            resp = await self._session.get(str(url), stream=True)
        except Timeout as exc:
            raise TimeoutError(str(exc)) from exc
        except RequestException as exc:
            raise aiohttp.ClientError(f"curl: {exc}") from exc
        try:
            headers = CIMultiDictProxy(CIMultiDict(resp.headers.multi_items()))
            declared = headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise BodyTooLarge(f"body of {declared} bytes declared, over the {max_bytes} cap")
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.aiter_content():
                size += len(chunk)
                if size > max_bytes:
                    raise BodyTooLarge(f"body over the {max_bytes} byte cap (read {size} so far)")
                chunks.append(chunk)
        except RequestException as exc:
            raise aiohttp.ClientError(f"curl: {exc}") from exc
        finally:
            await resp.aclose()
        return Response(int(resp.status_code), headers, b"".join(chunks))

    def cookie_header(self, url: str) -> str:
        """The cookies curl holds (all domains: curl filters them itself when sending)."""
        return "; ".join(f"{k}={v}" for k, v in self._session.cookies.items())

    def add_cookies(self, cookies: list[dict[str, Any]]) -> None:
        """Put browser cookies into curl's jar."""
        for cookie in cookies:
            if "name" in cookie:
                self._session.cookies.set(
                    str(cookie["name"]),
                    str(cookie.get("value", "")),
                    domain=str(cookie.get("domain") or ""),
                    path=str(cookie.get("path") or "/"),
                )

    async def close(self) -> None:
        """Close curl's session."""
        await self._session.close()
