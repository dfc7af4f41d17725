"""Replay recorded real exchanges through the real crawler code, on loopback.

``python -m benchmarks.replay --exchanges DIR [--json]`` reads a directory of recorded
exchanges (the format of ``shared/fixtures/recorded-exchanges``: one JSON file per
exchange, ``request.url`` and ``response.responseCode``/``responseHeaders``/
``responseBody``), serves them on 127.0.0.1 and drives the crawler over them:

* **discovery**: the recorded homepages through the worker's own ``Discoverer``
  (hydration, then bundles), and each homepage body through the pure extractors;
* **api bodies**: every 200 from the API host through the schema the crawler would
  parse it with; a list page of a kind the crawler lands (followers, followings, a
  user's tracks, reposters, likers) and a user object also through the handler that
  would land it, resumed at the recorded URL, into an in-memory store that checks every
  row against its table (:class:`crawler.store.MemoryStore`);
* **cursors**: every ``next_href`` through the cursor reader, by format; a cursor whose
  form promises a time that could not be read is listed in ``cursor_time_missing``;
* **rejections**: every 401/403 through the rejection classifier.

Requests are matched by host, path and query with ``client_id`` (and the
``app_version``/``app_locale`` the crawler adds) ignored, in any parameter order. The
three recorded hosts are served under ``/h/<host>`` and every absolute URL to them in a
body is rewritten to the local server, so ``next_href`` stays on the API host. A URL
that was not recorded (the page after the last recorded one) is answered with an empty
last page for the API host and 404 elsewhere, and counted in ``unrecorded``.

Endpoints the crawler does not crawl (search, charts, playlists, comments, media) are
still parsed with the schema's models where there is one, and listed under
``not_crawled`` where there is none. Prints JSON; exit status 1 if anything failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, TypeAdapter, ValidationError

from benchmarks.recordings import API_HOST, WEB_HOST, Exchange, ReplayServer, load, path_shape
from crawler.clientids import LocalClientIds
from crawler.config import WorkerSettings
from crawler.cursors import read_cursor
from crawler.discovery import (
    Discoverer,
    app_version_of,
    client_id_from_bundle,
    client_id_from_hydration,
)
from crawler.errors import DiscoveryError
from crawler.handlers import HANDLERS, UnitContext
from crawler.http import ApiClient, RetryPolicy
from crawler.metrics import WorkerMetrics
from crawler.rejections import classify_rejection
from crawler.store import MemoryStore
from crawler.transport import AiohttpTransport, BrowserProfile, create_session
from runtime.logs import configure_logging
from schemas.api_v2 import (
    Comment,
    Like,
    ListPageParser,
    Playlist,
    Track,
    User,
    is_not_found_body,
    parse_web_profiles,
)
from schemas.errors import PayloadError, SoundfleetError
from schemas.work import Lease

_ID = r"(?:[0-9]+|soundcloud(?::|%3A)users(?::|%3A)[0-9]+)"


# ----------------------------------------------------------------------- parsers


@dataclass(frozen=True)
class Endpoint:
    """How the crawler reads one API path: a parser, and the handler that lands it."""

    name: str
    parse: Callable[[bytes], Any]
    unit_kind: str | None = None
    payload: Callable[[re.Match[str]], dict[str, Any]] | None = None

    @property
    def is_list(self) -> bool:
        """A ``linked_partitioning`` list page (its parser is a list-page parser's)."""
        return isinstance(getattr(self.parse, "__self__", None), ListPageParser)


def _model(model: type[BaseModel]) -> Callable[[bytes], Any]:
    def parse(body: bytes) -> Any:
        try:
            return model.model_validate_json(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(body)"
            raise PayloadError(f"{model.__name__}: field {where}: {first['msg']}") from exc

    return parse


def _list(model: type[BaseModel]) -> Callable[[bytes], Any]:
    return ListPageParser(model).parse_body


_TRACKS = TypeAdapter(list[Track])


def _track_batch(body: bytes) -> Any:
    try:
        return _TRACKS.validate_json(body)
    except ValidationError as exc:
        raise PayloadError(f"tracks batch: {exc.errors()[0]['msg']}") from exc


_BY_KIND: dict[str, type[BaseModel]] = {"user": User, "track": Track, "playlist": Playlist}


def _mixed(body: bytes) -> Any:
    """A search page of users, tracks and playlists: each item by its ``kind``."""
    data = json.loads(body)
    if not isinstance(data, dict) or not isinstance(data.get("collection"), list):
        raise PayloadError("search page: no collection list")
    out = []
    for i, item in enumerate(data["collection"]):
        model = _BY_KIND.get(str(item.get("kind")) if isinstance(item, dict) else "")
        if model is None:
            raise PayloadError(f"search page: item {i}: unknown kind {item!r:.80}")
        out.append(model.model_validate(item))
    return out


def _resolved(body: bytes) -> Any:
    data = json.loads(body)
    kind = str(data.get("kind")) if isinstance(data, dict) else ""
    model = _BY_KIND.get(kind)
    if model is None:
        raise PayloadError(f"resolve: unknown kind {kind!r}")
    return model.model_validate(data)


def _profiles(body: bytes) -> Any:
    return parse_web_profiles(json.loads(body))


def _uid(m: re.Match[str]) -> int:
    return int(re.sub(r"\D", "", m.group("id").split("users")[-1]))


ENDPOINTS: list[tuple[re.Pattern[str], Endpoint]] = [
    (re.compile(rf"^/users/(?P<id>{_ID})$"), Endpoint(
        "user", _model(User), "user_range",
        lambda m: {"id_from": _uid(m), "id_to": _uid(m) + 1})),
    (re.compile(rf"^/users/(?P<id>{_ID})/(?P<dir>followers|followings)$"), Endpoint(
        "follow_list", _list(User), "follow_list",
        lambda m: {"user_id": _uid(m), "direction": m.group("dir"), "depth": 0,
                   "expand": False})),
    (re.compile(rf"^/users/(?P<id>{_ID})/tracks$"), Endpoint(
        "user_tracks", _list(Track), "user_tracks", lambda m: {"user_id": _uid(m)})),
    (re.compile(r"^/tracks/(?P<id>[0-9]+)/(?P<list>reposters|likers)$"), Endpoint(
        "track_list", _list(User), "track_list",
        lambda m: {"track_id": int(m.group("id")), "list": m.group("list"),
                   "timestamps": "page"})),
    (re.compile(r"^/tracks/(?P<id>[0-9]+)$"), Endpoint("track", _model(Track))),
    (re.compile(r"^/tracks$"), Endpoint("tracks_batch", _track_batch)),
    (re.compile(rf"^/users/(?P<id>{_ID})/web-profiles$"), Endpoint("web_profiles", _profiles)),
    (re.compile(rf"^/users/(?P<id>{_ID})/likes$"), Endpoint("user_likes", _list(Like))),
    (re.compile(rf"^/users/(?P<id>{_ID})/(albums|playlists|playlists_without_albums)$"),
     Endpoint("user_playlists", _list(Playlist))),
    (re.compile(r"^/playlists/[0-9]+$"), Endpoint("playlist", _model(Playlist))),
    (re.compile(r"^/tracks/[0-9]+/comments$"), Endpoint("comments", _list(Comment))),
    (re.compile(r"^/search/users$"), Endpoint("search_users", _list(User))),
    (re.compile(r"^/search/tracks$"), Endpoint("search_tracks", _list(Track))),
    (re.compile(r"^/search/playlists$"), Endpoint("search_playlists", _list(Playlist))),
    (re.compile(r"^/search$"), Endpoint("search", _mixed)),
    (re.compile(r"^/resolve$"), Endpoint("resolve", _resolved)),
]  # fmt: skip
"""API paths the schemas read, first match wins; anything else is ``not_crawled``."""


def _is_list(path: str) -> bool:
    found = endpoint_of(path)
    return found is not None and found[0].is_list


def endpoint_of(path: str) -> tuple[Endpoint, re.Match[str]] | None:
    """The endpoint ``path`` (of the API host) belongs to, if the schemas read it."""
    for pattern, endpoint in ENDPOINTS:
        m = pattern.match(path)
        if m is not None:
            return endpoint, m
    return None


# ----------------------------------------------------------------------- the run


@dataclass
class Report:
    """What the replay found (the JSON printed)."""

    exchanges: int = 0
    api_bodies: int = 0
    parsed: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    not_found: int = 0
    not_crawled: Counter[str] = field(default_factory=Counter)
    endpoints: Counter[str] = field(default_factory=Counter)
    cursors: Counter[str] = field(default_factory=Counter)
    cursor_time_missing: list[dict[str, str]] = field(default_factory=list)
    items_skipped: list[dict[str, Any]] = field(default_factory=list)
    rejections: list[dict[str, str]] = field(default_factory=list)
    discovery: dict[str, Any] = field(default_factory=dict)
    handlers: dict[str, Counter[str]] = field(default_factory=dict)
    unrecorded: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "exchanges": self.exchanges,
            "api_bodies": self.api_bodies,
            "parsed": self.parsed,
            "failed": self.failed,
            "not_found": self.not_found,
            "not_crawled": dict(self.not_crawled),
            "endpoints": dict(self.endpoints),
            "cursors": dict(self.cursors),
            "cursor_time_missing": self.cursor_time_missing,
            "items_skipped": self.items_skipped,
            "rejections": self.rejections,
            "discovery": self.discovery,
            "handlers": {k: dict(v) for k, v in self.handlers.items()},
            "unrecorded": self.unrecorded,
            "ok": not self.failed and not self.cursor_time_missing,
        }


class _FixedIds:
    """The recorded client_id, when no recorded homepage yields one."""

    def __init__(self, value: str) -> None:
        self.known: str | None = value

    async def current(self) -> str:
        assert self.known is not None
        return self.known

    async def rejected(self, value: str) -> None:
        return None

    def advise(self, value: str | None) -> None:
        return None


def _recorded_client_id(exchanges: list[Exchange]) -> str:
    for ex in exchanges:
        for k, v in parse_qsl(urlsplit(ex.url).query):
            if k == "client_id":
                return v
    return "replayreplayreplay00"


def _cursor_of(report: Report, ex: Exchange, next_href: str | None) -> None:
    if not next_href:
        return
    for key, value in parse_qsl(urlsplit(next_href).query, keep_blank_values=True):
        if key not in ("offset", "cursor"):
            continue
        reading = read_cursor(value)
        report.cursors[reading.format] += 1
        if reading.missing or reading.format == "unknown":
            report.cursor_time_missing.append(
                {"file": ex.file, "cursor": value[:120], "format": reading.format}
            )


def check_body(report: Report, ex: Exchange) -> tuple[Endpoint, re.Match[str]] | None:
    """Parse one API body with the schema the crawler uses; returns its endpoint."""
    found = endpoint_of(ex.path)
    body = ex.body.encode("utf-8")
    if found is None:
        report.not_crawled[path_shape(ex.path)] += 1
        try:
            json.loads(body)
        except ValueError as exc:
            report.failed.append({"file": ex.file, "reason": f"not JSON: {exc}"})
        return None
    endpoint, _ = found
    report.endpoints[endpoint.name] += 1
    try:
        value = endpoint.parse(body)
    except (PayloadError, ValidationError, ValueError) as exc:
        report.failed.append({"file": ex.file, "reason": f"{endpoint.name}: {exc}"[:400]})
        return None
    report.parsed += 1
    skipped = getattr(value, "skipped", None) or []
    for item in skipped:
        report.items_skipped.append(
            {"file": ex.file, "index": item["index"], "reason": item["reason"][:200]}
        )
    if isinstance(value, BaseModel) or not hasattr(value, "next_href"):
        with contextlib.suppress(ValueError, AttributeError):
            data = json.loads(body)
            if isinstance(data, dict):
                _cursor_of(report, ex, data.get("next_href"))
    else:
        _cursor_of(report, ex, value.next_href)
    return found


async def run_handler(
    report: Report,
    ex: Exchange,
    endpoint: Endpoint,
    match: re.Match[str],
    api: ApiClient,
    settings: WorkerSettings,
    server: ReplayServer,
    store: MemoryStore,
) -> None:
    """Land the recorded page (and any recorded pages after it) with the real handler."""
    assert endpoint.unit_kind is not None and endpoint.payload is not None
    kind = endpoint.unit_kind
    cursor = None if kind == "user_range" else server.rewrite(ex.url)
    lease = Lease(
        unit_id=1,
        job_id=1,
        kind=kind,  # type: ignore[arg-type]
        payload=endpoint.payload(match),
        token=1,
        cursor=cursor,
        lease_expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    ctx = UnitContext(lease, api, store, settings, WorkerMetrics(), asyncio.Event())
    counts = report.handlers.setdefault(kind, Counter())
    try:
        await HANDLERS[kind](ctx)
    except SoundfleetError as exc:
        report.failed.append({"file": ex.file, "reason": f"handler {kind}: {exc}"[:400]})
        counts["failed"] += 1
        return
    counts["units"] += 1
    counts["rows"] += ctx.rows


async def replay(directory: Path) -> Report:
    """Replay every exchange of ``directory``; the report."""
    exchanges, bad = load(directory)
    report = Report(exchanges=len(exchanges) + len(bad), failed=list(bad))
    server = ReplayServer(exchanges, _is_list)
    async with server.serving():
        await _discovery(report, exchanges, server)
        api_base = server.local(API_HOST)
        settings = WorkerSettings(
            api_base=api_base,
            web_base=server.local(WEB_HOST),
            api_key="replay",
            concurrency=4,
            max_retries=0,
            max_rejections=0,
        )
        profile = BrowserProfile(origin=server.local(WEB_HOST))
        transport = AiohttpTransport(create_session(4, 30.0, profile))
        try:
            api = ApiClient(
                transport,
                api_base,
                _FixedIds(_recorded_client_id(exchanges)),
                concurrency=4,
                policy=RetryPolicy(max_retries=0, max_rejections=0, max_block_waits=0),
                profile=profile,
            )
            store = MemoryStore()
            for ex in exchanges:
                if ex.host != API_HOST:
                    continue
                if ex.status in (401, 403):
                    kind, reason = classify_rejection(ex.status, ex.headers, ex.body.encode())
                    report.rejections.append({"file": ex.file, "kind": kind, "reason": reason})
                    continue
                if ex.status == 404:
                    if not is_not_found_body(_json_or_none(ex.body)):
                        report.failed.append({"file": ex.file, "reason": "404 body is not {}"})
                    report.not_found += 1
                    continue
                if ex.status != 200:
                    continue
                report.api_bodies += 1
                found = check_body(report, ex)
                if found is not None and found[0].unit_kind is not None:
                    await run_handler(report, ex, *found, api, settings, server, store)
        finally:
            await transport.close()
    report.unrecorded = len(server.unrecorded)
    return report


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


async def _discovery(report: Report, exchanges: list[Exchange], server: ReplayServer) -> None:
    pages = [ex for ex in exchanges if ex.host == WEB_HOST and ex.path in ("", "/")]
    bundles = [ex for ex in exchanges if ex.host == "a-v2.sndcdn.com"]
    found = {client_id_from_hydration(p.body) for p in pages} - {None}
    versions = {app_version_of(p.body) for p in pages} - {None}
    in_bundles = {client_id_from_bundle(b.body) for b in bundles} - {None}
    out: dict[str, Any] = {
        "homepages": len(pages),
        "hydration_client_ids": sorted(str(v) for v in found),
        "app_versions": sorted(str(v) for v in versions),
        "bundles": len(bundles),
        "bundle_client_ids": sorted(str(v) for v in in_bundles),
    }
    for ex in pages:
        if client_id_from_hydration(ex.body) is None:
            report.failed.append({"file": ex.file, "reason": "homepage: no hydration client_id"})
    if pages:
        profile = BrowserProfile()
        transport = AiohttpTransport(create_session(4, 30.0, profile))
        try:
            discoverer = Discoverer(
                transport,
                server.local(WEB_HOST),
                server.local(API_HOST),
                ("hydration", "bundles"),
                profile=profile,
            )
            ids = LocalClientIds(discoverer)
            out["discovered"] = await ids.current()
            out["discovered_app_version"] = profile.app_version
        except DiscoveryError as exc:
            report.failed.append({"file": pages[0].file, "reason": f"discovery: {exc}"})
        finally:
            await transport.close()
    report.discovery = out


def main(argv: list[str] | None = None) -> int:
    """Replay a directory of recorded exchanges; prints the report as JSON."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--exchanges", type=Path, required=True, help="directory of exchanges")
    p.add_argument("--json", action="store_true", help="one JSON line (default: indented)")
    p.add_argument("--log-level", default="warning", choices=("debug", "info", "warning"))
    args = p.parse_args(argv)
    configure_logging(args.log_level)
    if not args.exchanges.is_dir():
        print(f"--exchanges {args.exchanges}: not a directory", file=sys.stderr)
        return 2
    report = asyncio.run(replay(args.exchanges)).as_json()
    print(json.dumps(report, indent=None if args.json else 2, default=str))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
