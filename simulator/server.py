"""The simulator's HTTP service (aiohttp): homepage, script bundles and the api-v2 API.

Layout on one ``host:port``: the web pages at ``/`` and ``/assets/*.js``; the API under
``--api-prefix`` (default ``/api``), e.g. ``/api/users/5?client_id=…``. A crawler is
configured with ``web_base=http://host:port`` and ``api_base=http://host:port/api``.
Every ``next_href`` is absolute on that api_base. Test-only admin routes under
``/_admin/`` exist only when an admin token is configured.

Cursors: followers, followings, reposters and likers page by ``offset=<epoch µs of the
last item's event>``; a user's tracks by ``offset=<ISO ms>,tracks,<20-digit id>``; a
user's likes by ``offset=<ISO ms>,user-track-likes,000-<20-digit user>-<20-digit track>``.
``next_href`` drops ``client_id`` for tracks, likes and reposters (as the real service
does on some lists) and is null on the last page. Private tracks keep their slot in a
user's track list, so a page can be empty while ``next_href`` is set.

Faults are drawn per request from ``(seed, request number)`` so a run is reproducible;
client_id rotation and the admin clock are shared between ``--processes`` workers.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import socket
from collections.abc import Awaitable, Callable, Coroutine
from email.utils import formatdate
from typing import Any
from urllib.parse import quote, urlsplit

import structlog
from aiohttp import web

from runtime import serving
from schemas.api_v2 import MAX_BATCH_IDS
from simulator import answers, hashing, render
from simulator.answers import BadRequest
from simulator.botprotect import BotProtection
from simulator.events import Csr
from simulator.ledger import Ledger
from simulator.pages import Admin, WebPages
from simulator.params import GONE_RATE, S_FAULT, S_GONE
from simulator.state import ClientIds, Clock, RateLimiter, ServerConfig, Shared
from simulator.world import World

log = structlog.get_logger("simulator.server")

MAX_LIMIT = 200
DEFAULT_LIMIT = 50
_TRACK_LIST = re.compile(r"^/tracks/(\d+)/(?:reposters|likers)$")
_ID = re.compile(r"^[0-9]{1,18}\Z")
_USER_URN = re.compile(r"^soundcloud:users:([0-9]{1,18})\Z")
_US_CURSOR = re.compile(r"^[0-9]{1,19}\Z")
_ISO_MS = r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?Z)"
_TRACKS_CURSOR = re.compile(r"^" + _ISO_MS + r",tracks,([0-9]{20})\Z")
_LIKES_CURSOR = re.compile(r"^" + _ISO_MS + r",user-track-likes,000-([0-9]{20})-([0-9]{20})\Z")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _ms_boundary(
    items: list[tuple[int, int]], csr: Csr | None, k: int, oldest_us: int
) -> tuple[list[tuple[int, int]], str]:
    """A page whose next cursor is in epoch milliseconds, without losing an item.

    The next page holds the items older than the cursor's millisecond. So that no item
    of the page's last millisecond falls between two pages, a page whose next-older item
    shares that millisecond gives the whole millisecond to the next page and names the
    millisecond after it as its cursor. (A page made only of one millisecond keeps its
    microsecond cursor: trimming it would leave nothing.)
    """
    last_ms = oldest_us // 1000
    assert csr is not None
    lo = int(csr.ptr[k])
    times = csr.t_us[lo : int(csr.ptr[k + 1])]
    pos = int(times.searchsorted(oldest_us, side="left"))
    older_same_ms = pos > 0 and int(times[pos - 1]) // 1000 == last_ms
    if not older_same_ms:
        return items, str(last_ms)
    kept = [(other, t) for other, t in items if t // 1000 > last_ms]
    if not kept:
        return items, str(oldest_us)
    return kept, str(last_ms + 1)


class Simulator:
    """Request handlers over one :class:`World`."""

    def __init__(self, world: World, cfg: ServerConfig, shared: Shared) -> None:
        self.world = world
        self.cfg = cfg
        self.prefix = "/" + cfg.api_prefix.strip("/") if cfg.api_prefix.strip("/") else ""
        start = world.start_us if cfg.clock_start_us is None else cfg.clock_start_us
        self.clock = Clock(start, cfg.time_scale, shared)
        self.client_ids = ClientIds(world.seed, cfg.rotate_client_id_s, cfg.client_id_grace_s,
                                    shared)  # fmt: skip
        self.limiter = RateLimiter(cfg.rate_limit)
        self.shared = shared
        self.bots = BotProtection(world.seed, cfg.bot_protection) if cfg.bot_protection else None
        self._requests = itertools.count()
        self.ledger = Ledger(cfg.ledger) if cfg.ledger is not None else None
        live = world.live_ids()
        self.first_live = int(live[0]) if live.size else 1

    # ------------------------------------------------------------------ plumbing

    def api_base(self, request: web.Request) -> str:
        """The absolute API base as this request reached us."""
        return f"{request.scheme}://{request.host}{self.prefix}"

    def logged(self, serve: Handler) -> Handler:
        """``serve``, each answer recorded in the ledger (``serve`` itself without one)."""
        ledger = self.ledger
        if ledger is None:
            return serve

        async def handler(request: web.Request) -> web.StreamResponse:
            resp = await serve(request)
            ledger.record(request, resp.status, request.get("fault", ""))
            return resp

        return handler

    def api(self, fn: Callable[[web.Request, int], Any]) -> Handler:
        """Wrap an API handler: client_id, rate limit, faults, 400s; ``fn`` returns JSON."""

        async def handler(request: web.Request) -> web.StreamResponse:
            shared = self.shared
            shared.bump("api_requests")
            if self.bots is not None:
                refused = self.bots.refusal(request)
                if refused is not None:
                    cause, forbidden = refused
                    shared.bump(f"blocked_{cause}")
                    return forbidden
            client_id = request.query.get("client_id")
            if not client_id or not self.client_ids.valid(client_id):
                shared.bump("unauthorized")
                return answers.error(401, "invalid or missing client_id")
            wait = self.limiter.retry_after(client_id)
            if wait and self.bots is not None:
                # The real platform's throttle: plain text, no Retry-After.
                shared.bump("text_429")
                return web.Response(status=429, text="Please slow down.")
            if wait:
                shared.bump("retry_after_429")
                resp = answers.error(429, "rate limit exceeded")
                resp.headers["Retry-After"] = str(wait)
                return resp
            n = next(self._requests)
            seed = self.world.seed
            cfg = self.cfg
            if cfg.fault_429_text and hashing.uniform(seed, S_FAULT + 200, n) < cfg.fault_429_text:
                # The real platform's throttle: plain text, no Retry-After.
                shared.bump("text_429")
                return web.Response(status=429, text="Please slow down.")
            if cfg.fault_5xx and hashing.uniform(seed, S_FAULT, 3 * n) < cfg.fault_5xx:
                status = (500, 502, 503)[hashing.key(seed, S_FAULT + 100, n) % 3]
                request["fault"] = "5xx"
                return web.Response(status=status, text="<html><body>Service error</body></html>",
                                    content_type="text/html")  # fmt: skip
            if cfg.fault_slow and hashing.uniform(seed, S_FAULT, 3 * n + 1) < cfg.fault_slow:
                await asyncio.sleep(cfg.fault_slow_ms / 1000)
            hostile = self._hostile(request)
            if hostile is not None:
                return await hostile
            now_us = self.clock.now_us()
            try:
                result = fn(request, now_us)
            except BadRequest as exc:
                return answers.error(400, str(exc))
            if result is None:
                return answers.not_found()
            body = result if isinstance(result, bytes) else answers.dump(result)
            if cfg.fault_malformed and (
                hashing.uniform(seed, S_FAULT, 3 * n + 2) < cfg.fault_malformed
            ):
                body = body[: max(1, len(body) // 2)] if len(body) > 2 else b"{\x00"
                request["fault"] = "malformed"
            # The platform's clock, as a crawler sees it: the simulated time.
            headers = {"Date": formatdate(now_us / 1_000_000, usegmt=True)}
            resp = web.Response(
                body=body, content_type=answers.JSON, charset="utf-8", headers=headers
            )
            if self.bots is not None:
                resp.headers["x-datadome"] = "protected"
                self.bots.hand_cookie(request, resp)
            return resp

        return self.logged(handler)

    def _hostile(self, request: web.Request) -> Awaitable[web.StreamResponse] | None:
        """The hostile answer this request gets, if its track is one of them."""
        cfg = self.cfg
        if not (cfg.hostile_body_tracks or cfg.hostile_loop_tracks):
            return None
        path = request.path
        match = (
            _TRACK_LIST.match(path[len(self.prefix) :]) if path.startswith(self.prefix) else None
        )
        if match is None:
            return None
        tid = int(match.group(1))
        if tid in cfg.hostile_body_tracks:
            return self._huge_body(request, cfg.hostile_body_mb)
        if tid in cfg.hostile_loop_tracks:
            return self._self_loop(request)
        return None

    async def _huge_body(self, request: web.Request, megabytes: int) -> web.StreamResponse:
        # Valid-looking JSON that never ends within any sane cap: one user repeated.
        resp = web.StreamResponse(headers={"Content-Type": answers.JSON})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        user = answers.dump(render.mini_user(self.world, 1, self.clock.now_us()))
        chunk = b",".join([user] * max(1, 65_536 // len(user))) + b","
        await resp.write(b'{"collection": [')
        sent = 0
        try:
            while sent < megabytes * 1_048_576:
                await resp.write(chunk)
                sent += len(chunk)
            await resp.write(user + b'], "next_href": null}')
        except (ConnectionResetError, RuntimeError):
            return resp  # the client gave up, as it should
        await resp.write_eof()
        return resp

    async def _self_loop(self, request: web.Request) -> web.StreamResponse:
        page = {
            "collection": [render.mini_user(self.world, 1, self.clock.now_us())],
            "next_href": str(request.url),
        }
        return web.Response(body=answers.dump(page), content_type=answers.JSON)

    def _limit(self, request: web.Request) -> int:
        raw = request.query.get("limit")
        if raw is None:
            return DEFAULT_LIMIT
        if not _ID.match(raw) or int(raw) < 1:
            raise BadRequest(f"invalid limit {raw!r}: expected a positive integer")
        return min(int(raw), MAX_LIMIT)

    def _user_id(self, request: web.Request, allow_urn: bool = False) -> int:
        raw = request.match_info["id"]
        if _ID.match(raw):
            return int(raw)
        m = _USER_URN.match(raw) if allow_urn else None
        if m:
            return int(m.group(1))
        raise BadRequest(f"invalid user id {raw!r}")

    def _track_id(self, request: web.Request) -> int:
        raw = request.match_info["id"]
        if _ID.match(raw):
            return int(raw)
        raise BadRequest(f"invalid track id {raw!r}")

    def _user_exists(self, uid: int, now_us: int) -> bool:
        w = self.world
        if uid < 1 or uid > w.users:
            return False
        if uid > w.core:
            # scalar twin of World.is_gone (numpy on one element costs ~50 µs)
            if hashing.uniform(w.seed, S_GONE, uid) < GONE_RATE:
                return False
        elif w.gone[uid - 1]:
            return False
        return render.created_s(w, uid) * 1_000_000 <= now_us

    def _track_visible(self, tid: int, now_us: int) -> bool:
        t = self.world.tracks
        if tid < 1 or tid > t.id.size:
            return False
        return bool(t.public[tid - 1]) and int(t.created_s[tid - 1]) * 1_000_000 <= now_us

    def _href(self, request: web.Request, path: str, offset: str, limit: int,
              with_client: bool) -> str:  # fmt: skip
        query = f"offset={quote(offset, safe='')}&limit={limit}"
        if with_client:
            query += f"&client_id={request.query['client_id']}&linked_partitioning=1"
        return f"{self.api_base(request)}{path}?{query}"

    def _us_offset(self, request: web.Request) -> int | None:
        raw = request.query.get("offset")
        if raw is None:
            return None
        if not _US_CURSOR.match(raw):
            raise BadRequest(f"invalid offset {raw!r}")
        if len(raw) == 13:  # epoch milliseconds (the follow lists' older form)
            return int(raw) * 1000
        return int(raw)

    def _event_page(
        self, csr: Csr | None, k: int, now_us: int, limit: int, offset: int | None
    ) -> tuple[list[tuple[int, int]], int | None]:
        """Items ``(other, t_us)`` newest first, and the next cursor (µs) if any.

        Like the real service, a full page always carries a ``next_href`` (the cursor is
        its last item's time), even when nothing older exists: the list then ends with
        an empty page whose ``next_href`` is null. So with ``limit=1`` every item's time
        is in a cursor, the last item's included.
        """
        if csr is None:
            return [], None
        lo, hi = int(csr.ptr[k]), int(csr.ptr[k + 1])
        times = csr.t_us[lo:hi]
        end = int(times.searchsorted(now_us, side="right"))
        if offset is not None:
            end = min(end, int(times.searchsorted(offset, side="left")))
        begin = max(0, end - limit)
        items = [(int(csr.other[lo + i]), int(times[i])) for i in range(end - 1, begin - 1, -1)]
        full = len(items) == limit and limit > 0
        return items, (int(times[begin]) if full else None)

    # ------------------------------------------------------------------ API handlers

    def get_user(self, request: web.Request, now_us: int) -> Any:
        uid = self._user_id(request, allow_urn=True)
        if not self._user_exists(uid, now_us):
            return None
        return render.full_user_json(self.world, uid, now_us).encode()

    def _users_page(self, uids: list[int], now_us: int, next_href: str | None) -> bytes:
        """A collection of full users, serialised directly (the same bytes as ``_dump``)."""
        users = ",".join(render.full_user_json(self.world, u, now_us) for u in uids)
        nxt = "null" if next_href is None else json.dumps(next_href)
        return f'{{"collection":[{users}],"next_href":{nxt},"query_urn":null}}'.encode()

    def _follow_list(self, request: web.Request, now_us: int, followers: bool) -> Any:
        uid = self._user_id(request, allow_urn=True)
        limit = self._limit(request)
        offset = self._us_offset(request)
        if not self._user_exists(uid, now_us):
            return None
        w = self.world
        csr = (w.followers_of if followers else w.followings_of) if uid <= w.core else None
        items, nxt = self._event_page(csr, uid - 1, now_us, limit, offset)
        cursor = None if nxt is None else str(nxt)
        if nxt is not None and self.cfg.follow_cursor == "ms":
            items, cursor = _ms_boundary(items, csr, uid - 1, nxt)
        name = "followers" if followers else "followings"
        href = None
        if cursor is not None:
            href = self._href(request, f"/users/{uid}/{name}", cursor, limit, True)
        return self._users_page([other for other, _ in items], now_us, href)

    def get_followers(self, request: web.Request, now_us: int) -> Any:
        return self._follow_list(request, now_us, followers=True)

    def get_followings(self, request: web.Request, now_us: int) -> Any:
        return self._follow_list(request, now_us, followers=False)

    def get_user_tracks(self, request: web.Request, now_us: int) -> Any:
        uid = self._user_id(request, allow_urn=True)
        limit = self._limit(request)
        raw = request.query.get("offset")
        cursor: tuple[int, int] | None = None
        if raw is not None:
            m = _TRACKS_CURSOR.match(raw)
            if not m:
                raise BadRequest(f"invalid offset {raw!r}")
            cursor = (answers.parse_iso_us(m.group(1)), int(m.group(2)))
        if not self._user_exists(uid, now_us):
            return None
        w = self.world
        if uid > w.core:
            return {"collection": [], "next_href": None, "query_urn": None}
        csr = w.tracks_by
        lo, hi = int(csr.ptr[uid - 1]), int(csr.ptr[uid])
        times, ids = csr.t_us[lo:hi], csr.other[lo:hi]
        end = int(times.searchsorted(now_us, side="right"))
        if cursor is not None:
            # strictly older than (time, id) of the cursor's item
            pos = int(times.searchsorted(cursor[0], side="left"))
            while pos < end and times[pos] == cursor[0] and ids[pos] < cursor[1]:
                pos += 1
            end = min(end, pos)
        begin = max(0, end - limit)
        page = [int(ids[i]) for i in range(end - 1, begin - 1, -1)]
        collection = [
            render.track(w, tid, now_us, nested_full=False)
            for tid in page
            if w.tracks.public[tid - 1]
        ]
        nxt = None
        if begin > 0:
            last = page[-1]
            offset = f"{render.iso_ms(int(times[begin]))},tracks,{last:020d}"
            nxt = self._href(request, f"/users/{uid}/tracks", offset, limit, False)
        return {"collection": collection, "next_href": nxt, "query_urn": None}

    def get_user_likes(self, request: web.Request, now_us: int) -> Any:
        uid = self._user_id(request, allow_urn=True)
        limit = self._limit(request)
        raw = request.query.get("offset")
        cursor: tuple[int, int] | None = None
        if raw is not None:
            m = _LIKES_CURSOR.match(raw)
            if not m:
                raise BadRequest(f"invalid offset {raw!r}")
            cursor = (answers.parse_iso_us(m.group(1)), int(m.group(3)))
        if not self._user_exists(uid, now_us):
            return None
        w = self.world
        if uid > w.core:
            return {"collection": [], "next_href": None, "query_urn": None}
        csr = w.likes_by
        lo, hi = int(csr.ptr[uid - 1]), int(csr.ptr[uid])
        times, ids = csr.t_us[lo:hi], csr.other[lo:hi]
        end = int(times.searchsorted(now_us, side="right"))
        if cursor is not None:
            ms = cursor[0] // 1000
            pos = int(times.searchsorted(ms * 1000, side="left"))
            exact = pos
            while exact < end and int(times[exact]) // 1000 == ms:
                if int(ids[exact]) == cursor[1]:
                    pos = exact
                    break
                exact += 1
            end = min(end, pos)
        begin = max(0, end - limit)
        collection = [
            {
                "created_at": render.iso_s(int(times[i]) // 1_000_000),
                "kind": "like",
                "track": render.track(w, int(ids[i]), now_us, nested_full=False),
            }
            for i in range(end - 1, begin - 1, -1)
        ]
        nxt = None
        if begin > 0:
            offset = (
                f"{render.iso_ms(int(times[begin]))},user-track-likes,"
                f"000-{uid:020d}-{int(ids[begin]):020d}"
            )
            nxt = self._href(request, f"/users/{uid}/likes", offset, limit, False)
        return {"collection": collection, "next_href": nxt, "query_urn": None}

    def get_web_profiles(self, request: web.Request, now_us: int) -> Any:
        if self.cfg.urn_web_profiles_only and _ID.match(request.match_info["id"]):
            return None  # the real service answers the web client's URN form only
        uid = self._user_id(request, allow_urn=True)
        if not self._user_exists(uid, now_us):
            return None
        return render.web_profiles(self.world, uid)

    def get_track(self, request: web.Request, now_us: int) -> Any:
        tid = self._track_id(request)
        if not self._track_visible(tid, now_us):
            return None
        return render.track(self.world, tid, now_us, nested_full=True)

    def get_tracks(self, request: web.Request, now_us: int) -> Any:
        """``/tracks?ids=a,b,…``: the visible tracks among at most 50 ids, as an array.

        As on the real service the answer leaves out what it cannot show and does not
        keep the order asked for (here: newest id first).
        """
        raw = request.query.get("ids", "")
        parts = raw.split(",") if raw else []
        if not parts or len(parts) > MAX_BATCH_IDS or not all(_ID.match(p) for p in parts):
            raise BadRequest(f"invalid ids {raw[:100]!r}: 1 to {MAX_BATCH_IDS} track ids")
        ids = sorted({int(p) for p in parts}, reverse=True)
        w = self.world
        return [
            render.track(w, tid, now_us, nested_full=True)
            for tid in ids
            if self._track_visible(tid, now_us)
        ]

    def _track_users(self, request: web.Request, now_us: int, reposters: bool) -> Any:
        tid = self._track_id(request)
        limit = self._limit(request)
        offset = self._us_offset(request)
        if not self._track_visible(tid, now_us):
            return None
        w = self.world
        csr = w.reposters_of if reposters else w.likers_of
        items, nxt = self._event_page(csr, tid - 1, now_us, limit, offset)
        name = "reposters" if reposters else "likers"
        href = None
        if nxt is not None:
            href = self._href(request, f"/tracks/{tid}/{name}", str(nxt), limit, not reposters)
        return self._users_page([other for other, _ in items], now_us, href)

    def get_reposters(self, request: web.Request, now_us: int) -> Any:
        return self._track_users(request, now_us, reposters=True)

    def get_likers(self, request: web.Request, now_us: int) -> Any:
        return self._track_users(request, now_us, reposters=False)

    def get_resolve(self, request: web.Request, now_us: int) -> Any:
        url = request.query.get("url")
        if not url:
            raise BadRequest("missing parameter url")
        parts = [p for p in urlsplit(url).path.split("/") if p]
        seed = self.world.seed
        if len(parts) == 1:
            m = re.match(r"^[a-z]+([0-9]{1,18})\Z", parts[0])
            if not m:
                return None
            uid = int(m.group(1))
            if render.user_permalink(seed, uid) != parts[0] or not self._user_exists(uid, now_us):
                return None
            return render.full_user(self.world, uid, now_us)
        if len(parts) == 2:
            m = re.match(r"^.*-([0-9]{1,18})\Z", parts[1])
            if not m:
                return None
            tid = int(m.group(1))
            if not self._track_visible(tid, now_us):
                return None
            owner = int(self.world.tracks.user_id[tid - 1])
            if (
                render.track_permalink(seed, tid) != parts[1]
                or render.user_permalink(seed, owner) != parts[0]
            ):
                return None
            return render.track(self.world, tid, now_us, nested_full=True)
        return None

    async def unknown(self, request: web.Request) -> web.Response:
        """Any other API path: the real service's bare 404."""
        return answers.not_found()

    # ------------------------------------------------------------------ app

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application()
        p = self.prefix
        r = app.router
        pages = WebPages(self.world, self.client_ids, self.shared, self.bots, self.api_base,
                         self.first_live)  # fmt: skip
        r.add_get("/", self.logged(pages.homepage))
        r.add_get("/assets/{name}", self.logged(pages.asset))
        r.add_get(p + "/users/{id}", self.api(self.get_user))
        r.add_get(p + "/users/{id}/followers", self.api(self.get_followers))
        r.add_get(p + "/users/{id}/followings", self.api(self.get_followings))
        r.add_get(p + "/users/{id}/tracks", self.api(self.get_user_tracks))
        r.add_get(p + "/users/{id}/likes", self.api(self.get_user_likes))
        r.add_get(p + "/users/{id}/web-profiles", self.api(self.get_web_profiles))
        r.add_get(p + "/tracks", self.api(self.get_tracks))
        r.add_get(p + "/tracks/{id}", self.api(self.get_track))
        r.add_get(p + "/tracks/{id}/reposters", self.api(self.get_reposters))
        r.add_get(p + "/tracks/{id}/likers", self.api(self.get_likers))
        r.add_get(p + "/resolve", self.api(self.get_resolve))
        r.add_route("*", p + "/{tail:.*}", self.unknown)
        if self.cfg.admin_token:
            admin = Admin(self.cfg.admin_token, self.clock, self.client_ids, self.shared)
            r.add_route("*", "/_admin/clock", admin.admin_clock)
            r.add_post("/_admin/rotate-client-id", admin.admin_rotate)
            r.add_get("/_admin/stats", admin.admin_stats)
        return app


# ---------------------------------------------------------------------- processes


async def _serve(sim: Simulator, sock: socket.socket, ready: Callable[[], None] | None) -> None:
    runner = web.AppRunner(sim.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.SockSite(runner, sock)
    await site.start()
    if ready is not None:
        ready()
    try:
        await serving.until_stopped()
    finally:
        await runner.cleanup()


def serve_forever(world: World, cfg: ServerConfig, announce: Callable[[str], None]) -> int:
    """Serve until SIGINT/SIGTERM; ``announce`` gets ``simulator listening on …`` once ready.

    Returns the exit code: 1 when one of the ``processes`` died (the service is no
    longer whole), else 0.
    """
    shared = Shared()
    world.warm()
    sock = serving.bind(cfg.host, cfg.port)
    line = f"simulator listening on http://{cfg.host}:{sock.getsockname()[1]}"
    sim = Simulator(world, cfg, shared)
    log.info(
        "simulator_starting",
        port=sock.getsockname()[1],
        processes=cfg.processes,
        clock=render.iso_ms(sim.clock.now_us()),
        time_scale=cfg.time_scale,
        faults={"5xx": cfg.fault_5xx, "malformed": cfg.fault_malformed,
                "slow": cfg.fault_slow, "rate_limit": cfg.rate_limit},
    )  # fmt: skip

    def serve(sock: socket.socket, first: bool) -> Coroutine[Any, Any, None]:
        return _serve(sim, sock, (lambda: announce(line)) if first else None)

    return serving.run(serve, sock, cfg.processes)
