"""Crawler handlers against an in-process simulator and a real PostgreSQL.

Each unit kind must land exactly what the simulator's ground truth says for a small
world; faults (429 storms, 5xx, malformed bodies, client_id rotation) must change
nothing in the landed rows; the SSRF guard must refuse off-host ``next_href``s.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import pytest
from aiohttp import web

from crawler.clientids import LocalClientIds
from crawler.config import WorkerSettings
from crawler.discovery import (
    Discoverer,
    client_id_from_bundle,
    discover_browser,
    discover_bundles,
    discover_hydration,
)
from crawler.errors import OffHostError, TransientError
from crawler.handlers import HANDLERS, Drained, UnitContext, UnitResult
from crawler.http import ApiClient, RetryPolicy
from crawler.metrics import WorkerMetrics
from crawler.store import Store
from crawler.transport import (
    AiohttpTransport,
    BrowserProfile,
    ImpersonatingTransport,
    Transport,
    create_session,
)
from schemas.work import Lease
from simulator.server import Simulator
from simulator.state import ServerConfig, Shared
from simulator.world import World
from tests.browser import chromium

SEED = 11
USERS = 300

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _t(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(us))


@dataclass
class Sim:
    """A running simulator: its URLs, its world and its handlers (for the truth)."""

    world: World
    sim: Simulator
    runner: web.AppRunner
    web_base: str

    @property
    def api_base(self) -> str:
        return self.web_base + "/api"

    async def close(self) -> None:
        await self.runner.cleanup()


_WORLD: World | None = None


def world() -> World:
    global _WORLD
    if _WORLD is None:
        _WORLD = World.generate(seed=SEED, users=USERS)
    return _WORLD


async def start_sim(**cfg: Any) -> Sim:
    """Serve the test world on a free loopback port, its clock at the horizon's end."""
    w = world()
    sim = Simulator(w, ServerConfig(port=0, admin_token="t", **cfg), Shared())
    sim.clock.set(w.end_us)  # every event has happened
    runner = web.AppRunner(sim.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return Sim(w, sim, runner, f"http://127.0.0.1:{port}")


async def reposters_platform(s: Sim, page: Callable[[web.Request], Awaitable[web.Response]]) -> Sim:
    """A loopback platform whose every track's reposters list is ``page`` (hostile input)."""
    app = web.Application()
    app.router.add_get("/api/tracks/{id}/reposters", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return Sim(s.world, s.sim, runner, f"http://127.0.0.1:{runner.addresses[0][1]}")


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    s = await start_sim()
    yield s
    await s.close()


class Crawl:
    """What a worker would wire together, minus the coordinator."""

    def __init__(
        self,
        s: Sim,
        dsn: str,
        concurrency: int = 16,
        transport: str = "aiohttp",
        profile: BrowserProfile | None = None,
        policy: RetryPolicy | None = None,
        on_block: Callable[[str], Awaitable[float]] | None = None,
        **overrides: Any,
    ) -> None:
        self.on_block = on_block
        self.transport_kind = transport
        self.policy = policy or RetryPolicy(max_retries=12, backoff_base_s=0.01, backoff_max_s=0.1)
        self.profile = profile or BrowserProfile()
        self.settings = WorkerSettings(
            api_base=s.api_base,
            web_base=s.web_base,
            api_key="unused",
            concurrency=concurrency,
            **overrides,
        )
        self.dsn = dsn
        self.s = s
        self.metrics = WorkerMetrics()
        self.draining = asyncio.Event()
        self.throttle_reports: list[float] = []

    async def _throttled(self, retry_after_s: float) -> None:
        self.throttle_reports.append(retry_after_s)

    async def __aenter__(self) -> Crawl:
        self.transport: Transport = (
            ImpersonatingTransport(self.profile, self.settings.concurrency, 30)
            if self.transport_kind == "impersonate"
            else AiohttpTransport(create_session(self.settings.concurrency, 30, self.profile))
        )
        self.discoverer = Discoverer(
            self.transport, self.s.web_base, self.s.api_base, ["hydration"], profile=self.profile
        )
        self.client_ids = LocalClientIds(self.discoverer, self.metrics)
        self.api = ApiClient(
            self.transport,
            self.s.api_base,
            self.client_ids,
            concurrency=self.settings.concurrency,
            policy=self.policy,
            metrics=self.metrics,
            profile=self.profile,
            on_throttle=self._throttled,
            on_block=self.on_block,
        )
        self.store = await Store.open(self.dsn, size=2)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.transport.close()
        await self.store.close()

    def context(
        self, kind: str, payload: dict[str, Any], cursor: str | None = None, lease_s: float = 300
    ) -> UnitContext:
        lease = Lease(
            unit_id=1,
            job_id=1,
            kind=kind,  # type: ignore[arg-type]
            payload=payload,
            token=1,
            cursor=cursor,
            lease_expires_at=datetime.now(UTC) + timedelta(seconds=lease_s),
        )
        return UnitContext(lease, self.api, self.store, self.settings, self.metrics, self.draining)

    def record_requests(self) -> list[str]:
        """From now on, every URL the client is asked for, in order (the list returned)."""
        urls: list[str] = []
        fetch = self.api.fetch

        def recorded(url: str, *args: Any, **kw: Any) -> Any:
            urls.append(url)
            return fetch(url, *args, **kw)

        self.api.fetch = recorded  # type: ignore[method-assign]
        return urls

    async def run(self, kind: str, payload: dict[str, Any]) -> UnitResult:
        return await HANDLERS[kind](self.context(kind, payload))


def retries(metrics: WorkerMetrics, reason: str) -> float:
    value = metrics.registry.get_sample_value("soundfleet_worker_retries_total", {"reason": reason})
    return value or 0.0


def record_landings(ctx: UnitContext, note: Callable[[str | None], None]) -> None:
    """Call ``note(cursor)`` as each of ``ctx``'s landings begins."""
    land = ctx.land

    async def recorded(batch: Any, cursor: str | None) -> None:
        note(cursor)
        await land(batch, cursor)

    ctx.land = recorded  # type: ignore[method-assign]


async def rows(db: asyncpg.Connection, sql: str) -> set[tuple[Any, ...]]:
    return {tuple(r) for r in await db.fetch(sql)}


# ------------------------------------------------------------------------- truth


def expected_list(
    ev_other: np.ndarray, ev_t: np.ndarray, limit: int, created: dict[int, datetime]
) -> set[tuple[int, datetime, str]]:
    """(other, event_time, time_source) the crawler must land for a newest-first list.

    As on the real service, a full page carries a cursor (its last item's time), and
    the list ends with a short or empty page without one.
    """
    order = np.argsort(-ev_t, kind="stable")
    other, t = ev_other[order], ev_t[order]
    out = set()
    for start in range(0, other.size, limit):
        chunk = slice(start, min(start + limit, other.size))
        full = chunk.stop - chunk.start == limit
        for o in other[chunk]:
            if not full:
                out.add((int(o), created[int(o)], "none"))
            else:
                source = "exact" if limit == 1 else "page"
                out.add((int(o), _t(t[chunk][-1]), source))
    return out


def user_created(w: World) -> dict[int, datetime]:
    from simulator import render

    return {uid: _t(render.created_s(w, uid) * 1_000_000) for uid in range(1, w.users + 1)}


# ------------------------------------------------------------------------- tests


async def test_user_range_lands_live_users_and_gone_ids(
    sim: Sim, db_dsn: str, db: asyncpg.Connection
) -> None:
    async with Crawl(sim, db_dsn, id_batch=64) as crawl:
        result = await crawl.run("user_range", {"id_from": 1, "id_to": USERS + 21})
    w = sim.world
    ids = np.arange(1, USERS + 21)
    gone = set(ids[w.is_gone(ids)].tolist())
    assert {r[0] for r in await rows(db, "SELECT id FROM user_ids_gone")} == gone
    landed = await db.fetch("SELECT id, created_at, followers_count, plan FROM users")
    assert {r["id"] for r in landed} == set(ids.tolist()) - gone
    created = user_created(w)
    assert all(r["created_at"] == created[r["id"]] for r in landed)
    followers = np.bincount(w.follows.dst, minlength=USERS + 1)
    assert all(r["followers_count"] == followers[r["id"]] for r in landed)
    from simulator import render

    profiles = await rows(db, "SELECT user_id, url, network FROM web_profiles")
    assert profiles == {
        (r["id"], p["url"], p["network"]) for r in landed for p in render.web_profiles(w, r["id"])
    }
    assert any(network == "personal" for _, _, network in profiles)  # planted link spam
    assert result.rows == len(landed) + len(gone) + len(profiles)


async def test_follow_lists_land_the_truth_in_both_directions(
    sim: Sim, db_dsn: str, db: asyncpg.Connection
) -> None:
    w = sim.world
    popular = int(np.argmax(np.bincount(w.follows.dst)))
    busy = int(np.argmax(np.bincount(w.follows.src)))
    created = user_created(w)
    async with Crawl(sim, db_dsn, page_limit=50, flush_rows=60) as crawl:
        r1 = await crawl.run(
            "follow_list",
            {"user_id": popular, "direction": "followers", "depth": 0, "expand": True},
        )
        await crawl.run(
            "follow_list",
            {"user_id": busy, "direction": "followings", "depth": 0, "expand": False},
        )
    f = w.follows
    mask = f.dst == popular
    assert mask.sum() > 100  # pages of 50: several pages, flushed in several batches
    want = {(o, popular, t, s) for o, t, s in expected_list(f.src[mask], f.t_us[mask], 50, created)}
    mask = f.src == busy
    want |= {(busy, o, t, s) for o, t, s in expected_list(f.dst[mask], f.t_us[mask], 50, created)}
    got = await rows(db, "SELECT follower_id, followee_id, event_time, time_source FROM follows")
    assert got == want
    assert r1.discovered_user_ids == sorted(set(w.follows.src[w.follows.dst == popular].tolist()))
    listed = set(f.src[f.dst == popular].tolist()) | set(f.dst[f.src == busy].tolist())
    assert {r[0] for r in await rows(db, "SELECT id FROM users")} == listed


@pytest.mark.parametrize(("kind", "timestamps"), [("reposters", "exact"), ("likers", "page")])
async def test_track_lists_land_the_truth(
    sim: Sim, db_dsn: str, db: asyncpg.Connection, kind: str, timestamps: str
) -> None:
    w = sim.world
    ev = w.reposts if kind == "reposters" else w.likes
    track = int(np.argmax(np.bincount(ev.dst)))
    mask = ev.dst == track
    limit = 1 if timestamps == "exact" else 200
    async with Crawl(sim, db_dsn, page_limit=200, flush_rows=7) as crawl:
        await crawl.run("track_list", {"track_id": track, "list": kind, "timestamps": timestamps})
    table = "reposts" if kind == "reposters" else "likes"
    got = await rows(db, f"SELECT user_id, event_time, time_source FROM {table}")
    assert got == expected_list(ev.src[mask], ev.t_us[mask], limit, user_created(w))
    if timestamps == "exact":  # every item's time from its own page's cursor
        assert {r[2] for r in got} == {"exact"} and len(got) == mask.sum()


async def test_user_tracks_and_play_poll(sim: Sim, db_dsn: str, db: asyncpg.Connection) -> None:
    w = sim.world
    t = w.tracks
    artist = int(np.argmax(np.bincount(t.user_id)))
    public = set(t.id[(t.user_id == artist) & t.public].tolist())
    async with Crawl(sim, db_dsn, page_limit=2) as crawl:
        result = await crawl.run(
            "user_tracks", {"user_id": artist, "then_timelines": {"lists": ["reposters"]}}
        )
        one = min(public)
        await crawl.run("play_poll", {"track_id": one})  # a unit queued before batches
    assert {r[0] for r in await rows(db, "SELECT id FROM tracks")} == public
    assert result.discovered_track_ids == sorted(public)
    stats = await db.fetch("SELECT track_id, playback_count, reposts_count FROM track_stats")
    assert [(r["track_id"], r["reposts_count"]) for r in stats] == [
        (one, int((w.reposts.dst == one).sum()))
    ]
    assert stats[0]["playback_count"] is not None


async def test_a_play_poll_batch_snapshots_every_visible_track_in_one_request(
    sim: Sim, db_dsn: str, db: asyncpg.Connection
) -> None:
    t = sim.world.tracks
    private = [int(i) for i in t.id[~t.public][:3]]
    asked = [*(int(i) for i in t.id[t.public][:45]), *private, 10**9]  # 49 ids
    async with Crawl(sim, db_dsn) as crawl:
        requests = crawl.record_requests()
        await crawl.run("play_poll", {"track_ids": asked})
    assert len(requests) == 1
    stats = await rows(db, "SELECT track_id, reposts_count FROM track_stats")
    visible = set(asked[:45])
    assert {tid for tid, _ in stats} == visible  # private and unknown ids: no snapshot
    w = sim.world
    assert all(count == int((w.reposts.dst == tid).sum()) for tid, count in stats)
    assert {r[0] for r in await rows(db, "SELECT id FROM tracks")} == visible


async def test_a_drain_mid_batch_lands_every_fetched_id_and_none_is_fetched_twice(
    sim: Sim, db_dsn: str, db: asyncpg.Connection
) -> None:
    """SIGTERM in the middle of a batch: what was fetched lands, the cursor follows it."""
    asked: list[int] = []
    payload = {"id_from": 1, "id_to": 201}
    async with Crawl(sim, db_dsn, id_batch=100, web_profiles=False) as crawl:
        fetch = crawl.api.fetch

        async def counted(url: str, *args: Any, **kw: Any) -> Any:
            asked.append(int(url.rsplit("/", 1)[1]))
            if len(asked) == 30:
                crawl.draining.set()  # a third of the way into the first batch
            return await fetch(url, *args, **kw)

        crawl.api.fetch = counted  # type: ignore[method-assign]
        ctx = crawl.context("user_range", payload)
        with pytest.raises(Drained):
            await HANDLERS["user_range"](ctx)
        assert ctx.cursor is not None
        end = int(ctx.cursor.removeprefix("next_id="))
        # Lanes in flight finish their id; none takes another.
        assert 30 <= end - 1 < 30 + crawl.settings.concurrency
        assert sorted(asked) == list(range(1, end))
        landed = "SELECT id FROM users UNION ALL SELECT id FROM user_ids_gone"
        assert sorted(r[0] for r in await db.fetch(landed)) == list(range(1, end))
        crawl.draining.clear()
        await HANDLERS["user_range"](crawl.context("user_range", payload, cursor=ctx.cursor))
    assert sorted(asked) == list(range(1, 201))  # each id asked for once over both leases
    assert sorted(r[0] for r in await db.fetch(landed)) == list(range(1, 201))


async def test_a_slow_sweep_batch_is_cut_at_the_checkpoint_period(
    sim: Sim, db_dsn: str, db: asyncpg.Connection
) -> None:
    """A batch that outlasts a third of the lease lands what it has: the cursor moves."""
    payload = {"id_from": 1, "id_to": 101}
    async with Crawl(sim, db_dsn, concurrency=4, id_batch=100, web_profiles=False) as crawl:
        fetch = crawl.api.fetch

        async def slow(url: str, *args: Any, **kw: Any) -> Any:
            await asyncio.sleep(0.05)  # 4 lanes x 0.05 s: 100 ids take 1.25 s
            return await fetch(url, *args, **kw)

        crawl.api.fetch = slow  # type: ignore[method-assign]
        # A 1.5 s lease: a checkpoint every 0.5 s.
        ctx = crawl.context("user_range", payload, lease_s=1.5)
        cursors: list[str | None] = []
        record_landings(ctx, cursors.append)
        await HANDLERS["user_range"](ctx)
    ends = [int(c.removeprefix("next_id=")) for c in cursors if c is not None]
    assert len(ends) >= 2 and ends == sorted(ends) and ends[-1] == 101, ends
    assert ends[0] < 101  # the first checkpoint came before the whole batch
    landed = "SELECT id FROM users UNION ALL SELECT id FROM user_ids_gone"
    assert sorted(r[0] for r in await db.fetch(landed)) == list(range(1, 101))


async def test_a_list_attempt_checkpoints_its_first_page_at_once(
    sim: Sim, db_dsn: str, db: asyncpg.Connection
) -> None:
    """Only a moved cursor gives an attempt back: the first page lands before the second."""
    w = sim.world
    track = int(np.argmax(np.bincount(w.likes.dst)))
    payload = {"track_id": track, "list": "likers", "timestamps": "exact"}
    async with Crawl(sim, db_dsn) as crawl:
        pages = crawl.record_requests()
        ctx = crawl.context("track_list", payload)
        landed_after: list[int] = []
        record_landings(ctx, lambda _cursor: landed_after.append(len(pages)))
        await HANDLERS["track_list"](ctx)
    assert int((w.likes.dst == track).sum()) > 2
    # The first page alone, then (within the default 5 s period) the rest at the end.
    assert landed_after[0] == 1, landed_after
    assert await db.fetchval("SELECT count(*) FROM likes") == int((w.likes.dst == track).sum())


async def test_reprocessing_and_resuming_change_nothing(
    sim: Sim, db_dsn: str, db: asyncpg.Connection
) -> None:
    """Stop a unit at a checkpoint, resume from its cursor, then run it again whole."""
    w = sim.world
    track = int(np.argmax(np.bincount(w.reposts.dst)))
    payload = {"track_id": track, "list": "reposters", "timestamps": "exact"}
    sql = "SELECT track_id, user_id, event_time, time_source FROM reposts"
    async with Crawl(sim, db_dsn, flush_rows=4) as crawl:
        ctx = crawl.context("track_list", payload)
        crawl.draining.set()
        with pytest.raises(Drained):
            await HANDLERS["track_list"](ctx)
        assert ctx.cursor is not None and "offset=" in ctx.cursor
        partial = await rows(db, sql)
        assert 0 < len(partial) < int((w.reposts.dst == track).sum())
        crawl.draining.clear()
        await HANDLERS["track_list"](crawl.context("track_list", payload, cursor=ctx.cursor))
        resumed = await rows(db, sql)
        await crawl.run("track_list", payload)
    assert await rows(db, sql) == resumed
    assert len(resumed) == int((w.reposts.dst == track).sum())


async def test_429_storm_5xx_and_malformed_bodies_land_the_same_rows(
    db_dsn: str, db: asyncpg.Connection
) -> None:
    s = await start_sim(rate_limit=40.0, fault_5xx=0.1, fault_malformed=0.15)
    try:
        async with Crawl(s, db_dsn, concurrency=8, id_batch=40) as crawl:
            await crawl.run("user_range", {"id_from": 1, "id_to": 81})
            track = int(np.argmax(np.bincount(s.world.likes.dst)))
            await crawl.run(
                "track_list", {"track_id": track, "list": "likers", "timestamps": "page"}
            )
    finally:
        await s.close()
    ids = np.arange(1, 81)
    live = set(ids[~s.world.is_gone(ids)].tolist())
    landed = {r[0] for r in await rows(db, "SELECT id FROM users WHERE id <= 80")}
    assert landed == live
    assert retries(crawl.metrics, "throttled") > 0
    assert crawl.throttle_reports and all(s >= 1 for s in crawl.throttle_reports)
    assert retries(crawl.metrics, "transient") > 0
    assert retries(crawl.metrics, "malformed") > 0
    mask = s.world.likes.dst == track
    assert len(await rows(db, "SELECT * FROM likes")) == len(set(s.world.likes.src[mask].tolist()))


async def test_exhausted_retries_fail_with_a_precise_error(db_dsn: str) -> None:
    s = await start_sim(fault_5xx=1.0)
    try:
        async with Crawl(s, db_dsn) as crawl:
            crawl.api.policy = replace(crawl.api.policy, max_retries=2)
            with pytest.raises(TransientError, match=r"HTTP 50[023]"):
                await crawl.run("user_range", {"id_from": 1, "id_to": 3})
    finally:
        await s.close()


class _RotatingTransport:
    """The crawl's transport, rotating the simulator's client_id before every ``every``-th page."""

    def __init__(self, inner: Transport, s: Sim, every: int) -> None:
        self.inner, self.s, self.every, self.pages = inner, s, every, 0

    async def get(self, url: Any, *, max_bytes: int) -> Any:
        if "/reposters" in str(url):
            self.pages += 1
            if self.pages % self.every == 0:
                self.s.sim.client_ids.rotate()
        return await self.inner.get(url, max_bytes=max_bytes)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_client_id_rotation_mid_crawl(db_dsn: str, db: asyncpg.Connection) -> None:
    s = await start_sim(client_id_grace_s=0.0)
    w = s.world
    track = int(np.argmax(np.bincount(w.reposts.dst)))
    try:
        async with Crawl(s, db_dsn, concurrency=2, page_limit=1) as crawl:
            first = await crawl.client_ids.current()
            crawl.api.transport = _RotatingTransport(crawl.transport, s, every=3)
            await crawl.run("track_list", {"track_id": track, "list": "reposters"})
            assert await crawl.client_ids.current() != first
            assert retries(crawl.metrics, "client_id") >= 2
    finally:
        await s.close()
    assert int((w.reposts.dst == track).sum()) > 6  # pages of one: rotated twice mid-unit
    assert len(await rows(db, "SELECT * FROM reposts")) == int((w.reposts.dst == track).sum())


async def test_off_host_next_href_is_refused(sim: Sim, db_dsn: str, db: asyncpg.Connection) -> None:
    """A page whose next_href leaves the API host: logged, refused, nothing followed."""
    followed: list[str] = []

    async def page(request: web.Request) -> web.Response:
        followed.append(str(request.url))
        return web.json_response(
            {
                "collection": [],
                "next_href": "http://169.254.169.254/latest/meta-data?offset=1700000000000000",
            }
        )

    evil = await reposters_platform(sim, page)
    runner = evil.runner
    try:
        async with Crawl(evil, db_dsn) as crawl:
            crawl.client_ids.advise("abcdefgh12345678")
            with pytest.raises(OffHostError, match=r"169\.254\.169\.254"):
                await crawl.run("track_list", {"track_id": 1, "list": "reposters"})
            # A resume cursor is remote data too.
            ctx = crawl.context("track_list", {"track_id": 1, "list": "likers"}, "http://x.test/")
            with pytest.raises(OffHostError):
                await HANDLERS["track_list"](ctx)
    finally:
        await runner.cleanup()
    assert len(followed) == 1


# ------------------------------------------------------------------------- discovery


async def test_hydration_and_bundles_each_find_the_current_client_id(sim: Sim) -> None:
    transport = AiohttpTransport(create_session(4, 10))
    try:
        want = sim.sim.client_ids.current()
        assert await discover_hydration(transport, sim.web_base) == want
        assert await discover_bundles(transport, sim.web_base) == want
        sim.sim.client_ids.rotate()
        assert await discover_bundles(transport, sim.web_base) == sim.sim.client_ids.current()
    finally:
        await transport.close()


def test_bundle_pattern_is_anchored() -> None:
    source = (
        'x={google_client_id:"GOOGLEgoogle1234",widget_client_id:"W1dget000000",'
        'client_id:"RealOne12345678"}'
    )
    assert client_id_from_bundle(source) == "RealOne12345678"
    assert client_id_from_bundle('a.google_client_id="abcdefgh12345"') is None
    assert client_id_from_bundle('{"client_id": "quoted12345678"}') == "quoted12345678"


@pytest.mark.browser
async def test_browser_discovery_in_real_chromium(sim: Sim) -> None:
    found = await discover_browser(
        sim.web_base, sim.api_base, chromium=Path(chromium()), timeout=60
    )
    assert found == sim.sim.client_ids.current()


# ------------------------------------------------------------------------- the real platform


def _real_profile(**bot: Any) -> dict[str, Any]:
    from simulator.botprotect import BotConfig

    return {
        "bot_protection": BotConfig(**{"cookieless_allowance": 3, **bot}),
        "follow_cursor": "ms",
        "urn_web_profiles_only": True,
    }


def _fast_policy(**overrides: Any) -> RetryPolicy:
    return RetryPolicy(
        max_retries=12,
        backoff_base_s=0.01,
        backoff_max_s=0.1,
        throttle_default_s=0.01,
        block_base_s=0.05,
        block_max_s=0.4,
        **overrides,
    )


def _counter(metrics: WorkerMetrics, name: str) -> float:
    return metrics.registry.get_sample_value(name) or 0.0


@pytest.mark.parametrize("transport", ["aiohttp", "impersonate"])
async def test_the_real_profile_lands_the_truth(
    db_dsn: str, db: asyncpg.Connection, transport: str
) -> None:
    """DataDome, text 429s, ms cursors and URN-only web-profiles: the same rows land."""
    s = await start_sim(fault_429_text=0.05, **_real_profile())
    w = s.world
    popular = int(np.argmax(np.bincount(w.follows.dst)))
    try:
        crawl = Crawl(s, db_dsn, 4, transport, policy=_fast_policy(), id_batch=40, page_limit=20)
        async with crawl:
            await crawl.run("user_range", {"id_from": 1, "id_to": 81})
            await crawl.run(
                "follow_list",
                {"user_id": popular, "direction": "followers", "depth": 0, "expand": False},
            )
            assert "datadome=" in crawl.transport.cookie_header(s.api_base + "/users/1")
    finally:
        await s.close()
    ids = np.arange(1, 81)
    gone = set(ids[w.is_gone(ids)].tolist())
    assert {r[0] for r in await rows(db, "SELECT id FROM users WHERE id <= 80")} == (
        set(ids.tolist()) - gone
    )
    assert {r[0] for r in await rows(db, "SELECT id FROM user_ids_gone")} == gone
    from simulator import render

    landed = [int(i) for i in ids if int(i) not in gone]
    want_profiles = {(u, p["url"]) for u in landed for p in render.web_profiles(w, u)}
    assert await rows(db, "SELECT user_id, url FROM web_profiles") == want_profiles
    f = w.follows
    sel = f.dst == popular
    newest = {int(src): int(t) for src, t in zip(f.src[sel], f.t_us[sel], strict=True)}
    follows = await db.fetch(
        "SELECT follower_id, event_time, time_source FROM follows WHERE followee_id = $1", popular
    )
    assert {r["follower_id"] for r in follows} == set(newest)
    # A page's cursor (epoch ms) bounds its items from below: never later than an item.
    slack = timedelta(milliseconds=1)
    assert all(
        r["event_time"] <= _t(newest[r["follower_id"]]) + slack
        for r in follows
        if r["time_source"] == "page"
    )
    assert {r["time_source"] for r in follows} <= {"page", "none"}
    assert retries(crawl.metrics, "client_id") == 0  # nothing here refuses the id
    assert retries(crawl.metrics, "throttled") > 0
    assert _counter(crawl.metrics, "soundfleet_worker_blocks_total") == 0


async def test_a_burst_block_pauses_and_keeps_the_client_id(
    db_dsn: str, db: asyncpg.Connection
) -> None:
    s = await start_sim(**_real_profile(burst=15, block_s=0.2))
    try:
        async with Crawl(s, db_dsn, 8, policy=_fast_policy(), id_batch=40) as crawl:
            first = await crawl.client_ids.current()
            await crawl.run("user_range", {"id_from": 1, "id_to": 121})
            assert await crawl.client_ids.current() == first
    finally:
        await s.close()
    ids = np.arange(1, 121)
    live = set(ids[~s.world.is_gone(ids)].tolist())
    assert {r[0] for r in await rows(db, "SELECT id FROM users WHERE id <= 120")} == live
    assert _counter(crawl.metrics, "soundfleet_worker_blocks_total") >= 1
    assert retries(crawl.metrics, "blocked") >= 1
    assert retries(crawl.metrics, "client_id") == 0


async def test_a_client_that_stays_blocked_fails_with_the_block_reason(db_dsn: str) -> None:
    """No browser User-Agent: every request is a DataDome 403; the id is never refused."""
    from crawler.errors import Blocked

    s = await start_sim(**_real_profile())
    blocks: list[str] = []

    async def on_block(reason: str) -> float:
        blocks.append(reason)
        return 0.01

    try:
        agent = BrowserProfile(user_agent="python-requests/2.32")
        policy = _fast_policy(max_block_waits=3)
        async with Crawl(s, db_dsn, profile=agent, policy=policy, on_block=on_block) as crawl:
            crawl.client_ids.advise(s.sim.client_ids.current())
            with pytest.raises(Blocked, match="DataDome"):
                await crawl.run("user_range", {"id_from": 1, "id_to": 3})
            assert retries(crawl.metrics, "client_id") == 0
    finally:
        await s.close()
    assert blocks and all("DataDome" in b for b in blocks)


async def test_a_platform_that_answers_404_to_everything_marks_nothing_gone(
    sim: Sim, db_dsn: str, db: asyncpg.Connection
) -> None:
    """A worker pointed at the simulator's root instead of its API: 404 for every id."""
    from crawler.errors import PlatformAbsent

    async with Crawl(sim, db_dsn, id_batch=20) as crawl:
        await crawl.run("user_range", {"id_from": 1, "id_to": 41})  # a first, right crawl
    before = await rows(db, "SELECT id FROM user_ids_gone")
    wrong = Sim(sim.world, sim.sim, sim.runner, sim.web_base + "/nothing-here")
    async with Crawl(wrong, db_dsn, id_batch=20) as crawl:
        crawl.client_ids.advise(sim.sim.client_ids.current())
        with pytest.raises(PlatformAbsent, match="answer 404 too"):
            await crawl.run("user_range", {"id_from": 41, "id_to": 201})
    assert await rows(db, "SELECT id FROM user_ids_gone") == before
    assert len(await rows(db, "SELECT id FROM users")) == len(
        [i for i in range(1, 41) if not sim.world.is_gone(np.array([i]))[0]]
    )


async def test_a_new_client_waits_for_its_first_answer_before_fanning_out(
    db_dsn: str, db: asyncpg.Connection
) -> None:
    """One cookieless request allowed: the first goes alone and brings the cookie back."""
    s = await start_sim(**_real_profile(cookieless_allowance=1))
    try:
        async with Crawl(s, db_dsn, 16, policy=_fast_policy(), id_batch=64) as crawl:
            crawl.client_ids.advise(s.sim.client_ids.current())  # no homepage visit
            await crawl.run("user_range", {"id_from": 1, "id_to": 65})
    finally:
        await s.close()
    assert _counter(crawl.metrics, "soundfleet_worker_blocks_total") == 0
    ids = np.arange(1, 65)
    live = set(ids[~s.world.is_gone(ids)].tolist())
    assert {r[0] for r in await rows(db, "SELECT id FROM users WHERE id <= 64")} == live


@pytest.mark.parametrize("loop", ["self", "cycle", "endless"])
async def test_a_list_that_never_ends_fails_the_unit(
    sim: Sim, db_dsn: str, db: asyncpg.Connection, loop: str
) -> None:
    """A next_href back to its own page, a two-page cycle, or pages without end."""
    from crawler.errors import PagingLoop
    from simulator import render

    w = sim.world
    served: list[str] = []

    async def page(request: web.Request) -> web.Response:
        served.append(request.query.get("offset", "0"))
        offset = int(request.query.get("offset", "0"))
        following = {"self": offset, "cycle": 1 - offset, "endless": offset + 1}[loop]
        base = f"http://127.0.0.1:{request.url.port}/api/tracks/1/reposters"
        return web.json_response(
            {
                "collection": [render.full_user(w, 1 + offset % 3, w.end_us)],
                "next_href": f"{base}?offset={following}&limit=1&client_id=x",
            }
        )

    evil = await reposters_platform(sim, page)
    runner = evil.runner
    try:
        async with Crawl(evil, db_dsn, max_pages=50) as crawl:
            crawl.client_ids.advise("abcdefgh12345678")
            with pytest.raises(PagingLoop, match=r"repeats|max_pages"):
                await crawl.run("track_list", {"track_id": 1, "list": "reposters"})
    finally:
        await runner.cleanup()
    # The first URL is the handler's own (no offset): the loop shows from the second.
    assert len(served) == {"self": 2, "cycle": 3, "endless": 50}[loop]


async def test_odd_items_are_kept_raw_in_postgresql_and_the_page_lands(
    sim: Sim, db_dsn: str, db: asyncpg.Connection
) -> None:
    from simulator import render

    w = sim.world

    async def page(request: web.Request) -> web.Response:
        good = render.full_user(w, 2, w.end_us)
        odd = [{"kind": "user", "id": 3}, {"kind": "station", "urn": "x"}, "gone", 7]
        return web.json_response({"collection": [good, *odd], "next_href": None})

    odd_platform = await reposters_platform(sim, page)
    runner = odd_platform.runner
    try:
        async with Crawl(odd_platform, db_dsn) as crawl:
            crawl.client_ids.advise("abcdefgh12345678")
            await crawl.run("track_list", {"track_id": 1, "list": "reposters"})
    finally:
        await runner.cleanup()
    assert await rows(db, "SELECT user_id FROM reposts") == {(2,)}
    kept = await db.fetch("SELECT item_index, reason, raw FROM skipped_items ORDER BY 1")
    assert [r["item_index"] for r in kept] == [1, 2, 3, 4]
    assert json.loads(kept[1]["raw"]) == {"kind": "station", "urn": "x"}
    assert json.loads(kept[2]["raw"]) == "gone" and json.loads(kept[3]["raw"]) == 7
    assert all(r["reason"] for r in kept)
