"""client_id discovery: hydration, script bundles, headless Chromium; each usable alone.

1. ``hydration``: the homepage's ``window.__sc_hydration`` array, entry ``apiClient``.
2. ``bundles``: the homepage's ``<script src>`` bundles, last first, searched for
   ``client_id:"…"`` with an anchored pattern so ``google_client_id`` and friends
   never match.
3. ``browser``: a real headless Chromium loads the homepage and we read the client_id
   off the page's own requests to the API host; the browser's cookies (the bot
   protection's among them) are handed to the transport.

Pages are fetched through the worker's :class:`~crawler.transport.Transport`, with the
browser profile's headers, so the homepage's cookies stay in the jar the API requests
use; the page's ``window.__sc_version`` becomes the profile's ``app_version``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import aiohttp
import structlog

from crawler.cursors import client_id_of
from crawler.errors import BodyTooLarge, DiscoveryError
from crawler.transport import BrowserProfile, Transport
from runtime.logs import short

log = structlog.get_logger("crawler.discovery")

_CLIENT_ID = r"[A-Za-z0-9_-]{8,128}"
# Anchored: the key must not be preceded by an identifier character, so
# `google_client_id:"…"` or `widget_client_id:"…"` never match.
_BUNDLE_CLIENT_ID = re.compile(
    r"""(?<![A-Za-z0-9_$.])["']?client_id["']?\s*[:=]\s*["'](""" + _CLIENT_ID + r""")["']"""
)
_HYDRATION = re.compile(r"window\.__sc_hydration\s*=\s*(\[.*?\])\s*;\s*(?:</script>|$)", re.S)
_SCRIPT_SRC = re.compile(r"""<script\b[^>]*\bsrc\s*=\s*["']([^"']+)["']""", re.I)
_VALID = re.compile(r"^" + _CLIENT_ID + r"$")
_SC_VERSION = re.compile(r"""window\.__sc_version\s*=\s*["']([0-9]{1,20})["']""")
_PAGE_CAP = 16 * 1024 * 1024

BROWSER_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
)


@dataclass(frozen=True)
class Discovered:
    """A client_id and the strategy that found it."""

    value: str
    source: str


def client_id_from_hydration(html: str) -> str | None:
    """The ``apiClient`` id of the homepage's ``window.__sc_hydration`` array, if any."""
    match = _HYDRATION.search(html)
    if match is None:
        return None
    try:
        entries = json.loads(match.group(1))
    except json.JSONDecodeError:
        return None
    if not isinstance(entries, list):
        return None
    for entry in entries:
        if isinstance(entry, dict) and entry.get("hydratable") == "apiClient":
            data = entry.get("data")
            value = data.get("id") if isinstance(data, dict) else None
            if isinstance(value, str) and _VALID.match(value):
                return value
    return None


def client_id_from_bundle(source: str) -> str | None:
    """The ``client_id:"…"`` value of one script bundle (the first exact key), if any."""
    match = _BUNDLE_CLIENT_ID.search(source)
    return match.group(1) if match else None


def script_urls(html: str, page_url: str) -> list[str]:
    """Absolute ``<script src>`` URLs of a page, in document order."""
    urls = []
    for src in _SCRIPT_SRC.findall(html):
        absolute = urljoin(page_url, src)
        if urlsplit(absolute).scheme in ("http", "https"):
            urls.append(absolute)
    return urls


def app_version_of(html: str) -> str | None:
    """The web client's version named by the homepage (``window.__sc_version``), if any."""
    match = _SC_VERSION.search(html)
    return match.group(1) if match else None


async def _get_text(transport: Transport, url: str, timeout: float) -> str:
    try:
        resp = await asyncio.wait_for(transport.get(url, max_bytes=_PAGE_CAP), timeout)
    except (aiohttp.ClientError, TimeoutError, BodyTooLarge) as exc:
        raise DiscoveryError(f"GET {url} failed: {exc or type(exc).__name__}") from exc
    # 206: a CDN serving a script bundle in part (seen in the real recordings).
    if resp.status not in (200, 206):
        raise DiscoveryError(f"GET {url} answered {resp.status}")
    return resp.body.decode("utf-8", "replace")


async def _homepage(
    transport: Transport, web_base: str, timeout: float, profile: BrowserProfile | None
) -> tuple[str, str]:
    page = web_base.rstrip("/") + "/"
    html = await _get_text(transport, page, timeout)
    version = app_version_of(html)
    if profile is not None and version:
        profile.app_version = version
    return page, html


async def discover_hydration(
    transport: Transport,
    web_base: str,
    timeout: float = 20.0,
    profile: BrowserProfile | None = None,
) -> str | None:
    """Strategy 1: the homepage's hydration data."""
    _, html = await _homepage(transport, web_base, timeout, profile)
    return client_id_from_hydration(html)


async def discover_bundles(
    transport: Transport,
    web_base: str,
    timeout: float = 20.0,
    profile: BrowserProfile | None = None,
) -> str | None:
    """Strategy 2: the homepage's script bundles, last first."""
    page, html = await _homepage(transport, web_base, timeout, profile)
    for url in reversed(script_urls(html, page)):
        try:
            source = await _get_text(transport, url, timeout)
        except DiscoveryError as exc:
            log.info("discovery_bundle_unreadable", url=url, error=str(exc))
            continue
        found = client_id_from_bundle(source)
        if found:
            return found
    return None


def chromium_executable(configured: Path | None) -> str | None:
    """The Chromium to launch: the setting, ``SOUNDFLEET_CHROMIUM``, /usr/bin/chromium."""
    candidates = [
        str(configured) if configured else None,
        os.environ.get("SOUNDFLEET_CHROMIUM"),
        "/usr/bin/chromium",
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None  # Playwright's own browser, if it has one


async def discover_browser(
    web_base: str,
    api_base: str,
    chromium: Path | None = None,
    timeout: float = 30.0,
    transport: Transport | None = None,
    profile: BrowserProfile | None = None,
) -> str | None:
    """Strategy 3: load the homepage in headless Chromium, read its own API requests.

    The browser's cookies go to ``transport`` and the page's version to ``profile``,
    so the API requests that follow carry what the browser was given.
    """
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import Request, async_playwright

    api = urlsplit(api_base)
    found: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_request(request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.netloc != api.netloc or not parts.path.startswith(api.path.rstrip("/")):
            return
        value = client_id_of(request.url)
        if value and _VALID.match(value) and not found.done():
            found.set_result(value)

    executable = chromium_executable(chromium)
    with tempfile.TemporaryDirectory(prefix="soundfleet-chromium-") as profile_dir:
        try:
            async with async_playwright() as pw:
                context = await pw.chromium.launch_persistent_context(
                    profile_dir,
                    executable_path=executable,
                    headless=True,
                    args=list(BROWSER_ARGS),
                    user_agent=profile.user_agent if profile is not None else None,
                )
                try:
                    page = await context.new_page()
                    page.on("request", on_request)
                    await page.goto(web_base.rstrip("/") + "/", timeout=timeout * 1000)
                    value = await asyncio.wait_for(found, timeout)
                    if profile is not None:
                        version = app_version_of(await page.content())
                        profile.app_version = version or profile.app_version
                    if transport is not None:
                        cookies = await context.cookies()
                        transport.add_cookies([dict(c) for c in cookies])
                        log.info("browser_cookies_adopted", cookies=len(cookies))
                    return value
                except TimeoutError:
                    return None
                finally:
                    await context.close()
        except PlaywrightError as exc:
            raise DiscoveryError(
                "headless Chromium failed: " + (exc.message or str(exc) or "?").splitlines()[0]
            ) from exc


class Discoverer:
    """Runs the configured strategies in order until one yields a client_id."""

    def __init__(
        self,
        transport: Transport,
        web_base: str,
        api_base: str,
        strategies: Sequence[str],
        chromium: Path | None = None,
        profile: BrowserProfile | None = None,
    ) -> None:
        self._transport = transport
        self._web_base = web_base
        self._api_base = api_base
        self._strategies = tuple(strategies)
        self._chromium = chromium
        self._profile = profile

    async def _run(self, strategy: str) -> str | None:
        if strategy == "hydration":
            return await discover_hydration(self._transport, self._web_base, profile=self._profile)
        if strategy == "bundles":
            return await discover_bundles(self._transport, self._web_base, profile=self._profile)
        if strategy == "browser":
            return await discover_browser(
                self._web_base,
                self._api_base,
                self._chromium,
                transport=self._transport,
                profile=self._profile,
            )
        raise DiscoveryError(f"unknown discovery strategy {strategy!r}")

    async def discover(self) -> Discovered:
        """The first client_id the strategies find; :class:`DiscoveryError` if none does."""
        errors = []
        for strategy in self._strategies:
            try:
                value = await self._run(strategy)
            except DiscoveryError as exc:
                errors.append(f"{strategy}: {exc}")
                log.warning("discovery_failed", strategy=strategy, error=str(exc))
                continue
            if value:
                log.info("discovery_succeeded", strategy=strategy, client_id=short(value))
                return Discovered(value, strategy)
            errors.append(f"{strategy}: no client_id found")
            log.warning("discovery_found_nothing", strategy=strategy)
        raise DiscoveryError("client_id discovery failed (" + "; ".join(errors) + ")")
