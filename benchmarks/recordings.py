"""Recorded exchanges with the real platform, and a loopback server that answers them.

The format is ``shared/fixtures/recorded-exchanges``'s: one JSON file per exchange,
``request.url`` and ``response.responseCode``/``responseHeaders``/``responseBody``.
Requests are matched by host, path and query with ``client_id`` (and the
``app_version``/``app_locale`` the crawler adds) ignored, in any parameter order; the
recorded hosts are served under ``/h/<host>`` (see :mod:`benchmarks.replay`).
"""

from __future__ import annotations

import ast
import contextlib
import json
import re
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from aiohttp import web

API_HOST = "api-v2.soundcloud.com"
WEB_HOST = "soundcloud.com"
HOSTS = (API_HOST, WEB_HOST, "a-v2.sndcdn.com")
_IGNORED_PARAMS = frozenset({"client_id", "app_version", "app_locale"})


@dataclass
class Exchange:
    """One recorded request and its response."""

    file: str
    method: str
    url: str
    status: int
    headers: dict[str, str]
    body: str

    @property
    def host(self) -> str:
        return (urlsplit(self.url).hostname or "").lower()

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/"


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


def path_shape(path: str) -> str:
    """A path with its ids and UUIDs as placeholders (``/media/…:tracks:{n}/{uuid}/stream``)."""
    return re.sub(r"[0-9]+", "{n}", _UUID.sub("{uuid}", path))[:80]


def _headers(raw: Any) -> dict[str, str]:
    """Response headers as one string per name (the recordings keep lists, or a
    stringified map of lists)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            try:
                raw = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                return {}
    if not isinstance(raw, dict):
        return {}
    out: dict[str, str] = {}
    for name, value in raw.items():
        if name is None:
            continue
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        out[str(name).lower()] = str(value)
    return out


def load(directory: Path) -> tuple[list[Exchange], list[dict[str, str]]]:
    """The exchanges of ``directory`` and the files that are not one (with the reason)."""
    exchanges: list[Exchange] = []
    bad: list[dict[str, str]] = []
    for path in sorted(directory.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            request, response = data["request"], data["response"]
            exchanges.append(
                Exchange(
                    file=path.name,
                    method=str(request.get("httpMethod") or request.get("method") or "GET"),
                    url=str(request["url"]),
                    status=int(response["responseCode"]),
                    headers=_headers(response.get("responseHeaders")),
                    body=response.get("responseBody") or "",
                )
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            bad.append({"file": path.name, "reason": f"not a recorded exchange: {exc!r}"[:300]})
    return exchanges, bad


def match_key(url: str) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """Host, path and the query without the client's own parameters, sorted."""
    parts = urlsplit(url)
    query = tuple(
        sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
               if k not in _IGNORED_PARAMS)
    )  # fmt: skip
    return (parts.hostname or "").lower(), parts.path.rstrip("/") or "/", query


# ----------------------------------------------------------------------- the server


class ReplayServer:
    """Serves the recorded exchanges under ``/h/<host>/…`` on 127.0.0.1."""

    def __init__(self, exchanges: list[Exchange], is_list: Callable[[str], bool]) -> None:
        # is_list(path): whether an API path is a list (its unrecorded page: an empty end)
        self.is_list = is_list
        self.exchanges: dict[tuple[str, str, tuple[tuple[str, str], ...]], Exchange] = {}
        for ex in exchanges:
            self.exchanges.setdefault(match_key(ex.url), ex)
        self.unrecorded: list[str] = []
        self.base = ""
        self._runner: web.AppRunner | None = None

    def local(self, host: str) -> str:
        """The local base URL standing for ``https://<host>``."""
        return f"{self.base}/h/{host}"

    def rewrite(self, body: str) -> str:
        """``body`` with every absolute URL to a recorded host made local."""
        for host in HOSTS:
            body = body.replace(f"https://{host}", self.local(host))
            body = body.replace(f"https:\\/\\/{host}", self.local(host).replace("/", "\\/"))
        return body

    async def handle(self, request: web.Request) -> web.Response:
        host = request.match_info["host"]
        tail = "/" + request.match_info.get("tail", "")
        url = f"https://{host}{tail}" + (f"?{request.query_string}" if request.query_string else "")
        ex = self.exchanges.get(match_key(url))
        if ex is None:
            self.unrecorded.append(url)
            if host == API_HOST and self.is_list(tail):
                # The page after the last recorded one: end the list there.
                return web.json_response({"collection": [], "next_href": None})
            if host == API_HOST:  # the platform's bare 404
                return web.json_response({}, status=404)
            return web.Response(status=404, text="not recorded")
        headers = {
            k: v
            for k, v in ex.headers.items()
            if k in ("content-type", "x-datadome", "retry-after", "date")
        }
        return web.Response(status=ex.status, text=self.rewrite(ex.body), headers=headers)

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[ReplayServer]:
        app = web.Application()
        app.router.add_get("/h/{host}", self.handle)
        app.router.add_get("/h/{host}/{tail:.*}", self.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        site = web.SockSite(runner, sock)
        await site.start()
        self.base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        try:
            yield self
        finally:
            await runner.cleanup()
