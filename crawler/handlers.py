"""One handler per crawl unit kind: fetch, turn payloads into rows, land, checkpoint.

A handler works through a :class:`UnitContext`. It lands its rows in batches
(:meth:`UnitContext.land` commits a batch, then moves the resume cursor past it), so
the cursor a heartbeat reports never runs ahead of committed rows: a unit re-leased
after a crash resumes where the last committed batch ended, and landing the overlap
again changes nothing (every write is idempotent).

Event times: lists are newest first and a page's cursor (``offset=<epoch µs>`` or
``offset=<ISO>,…``) is the time of the page's last (oldest) item. With ``limit=1``
(``timestamps: exact``) that is the time of the page's one item (``time_source='exact'``);
with ``limit=200`` it is a lower bound of every item on the page and exact for its last
(``'page'``). A full page always carries a cursor and the list ends with a short or empty
page that has none: its items get ``'none'`` and, as event time, the listed user's
``created_at`` (a deterministic lower bound, so landing the page again hits the same
key; the fetch time would not).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from crawler.config import WorkerSettings
from crawler.cursors import api_url, check_on_api_host, href_cursor, without_params
from crawler.errors import OffHostError, PagingLoop, PlatformAbsent, StaleLease
from crawler.http import GONE, ApiClient
from crawler.metrics import WorkerMetrics
from crawler.store import Batch, Fence, Record, Row, RowStore
from schemas import records, tables
from schemas.api_v2 import (
    CLIENT_PARAMS,
    BatchParser,
    ListPage,
    ListPageParser,
    Track,
    User,
    parse_web_profiles,
)
from schemas.errors import InputError
from schemas.records import TimeSource
from schemas.work import (
    FollowListPayload,
    Lease,
    PlayPollPayload,
    TrackListPayload,
    UserRangePayload,
    UserTracksPayload,
)

_RANGE_CURSOR = "next_id="
_FLUSH_EVERY_S = 5.0
_USER_LIST = ListPageParser(User)
_TRACK_LIST = ListPageParser(Track)
_TRACK_BATCH = BatchParser(Track)
# A confirmed-live answer vouches for the platform's 404s this long (per worker).
_LIVE_CHECK_S = 30.0
_LIVE_PROBES = 3


class Drained(Exception):
    """The worker is draining: the unit stopped at a committed checkpoint."""


@dataclass
class UnitResult:
    """What a finished unit reports to the coordinator."""

    rows: int
    discovered_user_ids: list[int] = field(default_factory=list)
    discovered_track_ids: list[int] = field(default_factory=list)


class UnitContext:
    """One leased unit as a handler sees it: its API client, store and checkpoint."""

    def __init__(
        self,
        lease: Lease,
        api: ApiClient,
        store: RowStore,
        settings: WorkerSettings,
        metrics: WorkerMetrics,
        draining: asyncio.Event,
        fence: Fence | None = None,
    ) -> None:
        self.lease = lease
        # The worker lands under its lease (Store.land's fence); tests without a
        # coordinator land unfenced.
        self.fence = fence
        self.api = api
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.draining = draining
        self.cursor: str | None = lease.cursor
        # Set when a landing moves the cursor: the heartbeat then takes it to the
        # coordinator soon, instead of a whole period later.
        self.moved = asyncio.Event()
        self.rows = 0
        self.log = structlog.get_logger("crawler.unit").bind(
            unit_id=lease.unit_id, job_id=lease.job_id, kind=lease.kind
        )

    def url(self, path: str, **params: str | int) -> str:
        """An API URL under the configured base."""
        return api_url(self.settings.api_base, path, **params)

    async def land(self, batch: Batch, cursor: str | None) -> None:
        """Commit ``batch``, then move the resume point to ``cursor``."""
        if len(batch):
            try:
                self.rows += await self.store.land(batch, self.fence)
            except StaleLease:
                self.metrics.fenced_rows.inc(len(batch))
                self.log.warning("rows_fenced", rows=len(batch))
                raise
            for name, count in batch.counts().items():
                self.metrics.rows.labels(name).inc(count)
        if cursor != self.cursor:
            self.cursor = cursor
            self.moved.set()

    def stop_if_draining(self) -> None:
        """Raise :class:`Drained` when the worker is shutting down (call at checkpoints)."""
        if self.draining.is_set():
            raise Drained()

    async def confirm_absence(self, exclude: set[int] | None = None) -> None:
        """Before marking ids gone: a user known to be live must still answer.

        A platform that answers 404 to everything (a wrong base URL, a block that looks
        like absence) must not erase the dataset. Up to three recently landed live users
        are asked; if none answers, :class:`PlatformAbsent` fails the unit (retried with
        backoff) and nothing is marked gone. A positive answer vouches for the next
        half minute of 404s of this worker.
        """
        api = self.api
        now = time.monotonic()
        if now - api.live_confirmed_at < _LIVE_CHECK_S:
            return
        known = await self.store.known_live_users(_LIVE_PROBES, exclude or set())
        if not known:
            raise PlatformAbsent(
                "every id answered 404 and no live user is in the database to check the "
                f"platform against: is the API base {self.settings.api_base!r} right?"
            )
        for user_id in known:
            got = await api.fetch(self.url(f"/users/{user_id}"), User)
            if got.data is not GONE:
                api.live_confirmed_at = time.monotonic()
                return
        shown = ", ".join(map(str, known))
        raise PlatformAbsent(
            f"known-live users {shown} answer 404 too: the platform answers 404 for "
            f"everything (API base {self.settings.api_base!r} wrong, or a block)"
        )


def _now() -> datetime:
    return datetime.now(UTC)


def _flush_period(ctx: UnitContext) -> float:
    """Seconds between checkpoints: at least one per heartbeat (a third of the lease).

    A short lease under frequent kills must still move the unit's cursor forward
    between deaths.
    """
    lease_left = (ctx.lease.lease_expires_at - _now()).total_seconds()
    return min(_FLUSH_EVERY_S, max(0.5, lease_left / 3))


# ---------------------------------------------------------------------- user_range


async def user_range(ctx: UnitContext) -> UnitResult:
    """``GET /users/{id}`` for each id of the range; 404s land in ``user_ids_gone``."""
    payload = UserRangePayload.model_validate(ctx.lease.payload)
    start = payload.id_from
    if ctx.cursor and ctx.cursor.startswith(_RANGE_CURSOR):
        start = max(start, int(ctx.cursor[len(_RANGE_CURSOR) :]))

    base = ctx.settings.api_base.rstrip("/") + "/users/"
    pages = ctx.metrics.pages.labels("user")
    # Twice as many lanes as request slots: while one unit's lanes wait at a batch
    # boundary, other units' lanes take their slots (a lane queues for a slot once,
    # not per request: see ApiClient.lane).
    s = ctx.settings
    lanes = max(4, min(s.concurrency, s.id_batch, -(-2 * s.concurrency // s.unit_slots)))

    with_profiles = ctx.settings.web_profiles
    max_gone_share = ctx.settings.max_gone_share
    api = ctx.api
    draining = ctx.draining

    flush_every = _flush_period(ctx)

    async def fetch(lo: int, hi: int) -> tuple[Batch, int]:
        # A few lanes pulling ids, not one task per id: tasks cost more than requests.
        # Ids are handed out in order and, once the worker drains or the batch has
        # run for a checkpoint period, no lane takes another: the batch is then exactly
        # [lo, end), every id fetched lands and the checkpoint resumes at ``end``
        # (nothing fetched is fetched again). The time cut keeps a slow platform's
        # batches checkpointing as often as a list's pages do.
        end = lo
        batch = Batch()
        gone: list[Record] = []
        users: list[Record] = []
        cut_at = time.monotonic() + flush_every

        def take() -> int | None:
            nonlocal end
            if end >= hi or draining.is_set() or (end > lo and time.monotonic() >= cut_at):
                return None  # (a batch holds one id at least: the unit always moves on)
            end += 1
            return end - 1

        async def lane() -> None:
            # The lane holds one request slot for all its ids (see ApiClient.lane).
            async with api.lane() as held:
                while (user_id := take()) is not None:
                    user = (await held.fetch(f"{base}{user_id}", User)).data
                    fetched_at = _now()
                    if user is GONE:
                        gone.append((user_id, fetched_at))
                        continue
                    if user.id != user_id:
                        raise InputError(f"/users/{user_id} answered user {user.id}")
                    # Laid out as a tuple at once, so the parsed model (a dozen objects the
                    # garbage collector would re-scan while the batch fills) is freed here.
                    users.append(records.user_record(user, fetched_at))
                    if with_profiles:
                        # By URN, as the web client asks; the numeric form as fallback.
                        # A 404 on both means no profile list, never a gone user.
                        url = f"{base}soundcloud:users:{user_id}/web-profiles"
                        listed = (await held.fetch(url, parse_web_profiles)).data
                        if listed is GONE:
                            url = f"{base}{user_id}/web-profiles"
                            listed = (await held.fetch(url, parse_web_profiles)).data
                        if listed is not GONE:
                            batch.profiles_of.add(user_id)
                            # One row per URL (the key): a link listed twice is one row.
                            unique = {link.url: link for link in listed}.values()
                            batch.extend(
                                tables.web_profiles,
                                (records.web_profile_row(user_id, p, fetched_at) for p in unique),
                            )

        try:
            await asyncio.gather(*(lane() for _ in range(min(lanes, hi - lo))))
        finally:
            pages.inc(len(gone) + len(users))  # once per batch: thousands of users a second
        if gone and (not users or len(gone) > max_gone_share * (len(gone) + len(users))):
            # An implausible share of 404s: the platform must still know a live user.
            await ctx.confirm_absence({uid for uid, _ in gone})
        batch.add_records(tables.users, records.USER_COLUMNS, users)
        batch.add_records(tables.user_ids_gone, records.GONE_COLUMNS, gone)
        return batch, end

    step = ctx.settings.id_batch
    # Landing batch k overlaps fetching batch k+1; landings stay in order, so the
    # checkpoint cursor only ever moves past committed rows.
    landing: asyncio.Task[None] | None = None
    lo = start
    try:
        while lo < payload.id_to:
            batch, end = await fetch(lo, min(lo + step, payload.id_to))
            if landing is not None:
                await landing
            landing = asyncio.create_task(ctx.land(batch, f"{_RANGE_CURSOR}{end}"))
            if end < payload.id_to and draining.is_set():
                await landing
                ctx.stop_if_draining()
            lo = end
        if landing is not None:
            await landing
    finally:
        if landing is not None and not landing.done():
            landing.cancel()  # an uncommitted batch rolls back; the cursor stays behind it
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await landing
    return UnitResult(ctx.rows)


# ---------------------------------------------------------------------- paged lists


def _page_time(
    ctx: UnitContext, next_href: str | None, exact: bool, items: int
) -> tuple[datetime | None, TimeSource]:
    """The event time a page's cursor gives its items (None: no cursor, or no time in it).

    Every cursor format the platform uses is read (:func:`crawler.cursors.read_cursor`);
    one that should have held a time but did not is logged and counted, never guessed.
    """
    reading = href_cursor(next_href)
    if reading is None:
        return None, "none"
    found = reading.time
    ctx.metrics.cursors.labels(reading.format, "true" if found is not None else "false").inc()
    if found is None:
        if reading.missing or reading.format == "unknown":
            ctx.log.warning("cursor_time_missing", cursor=reading.value[:120], form=reading.format)
        return None, "none"
    if exact and items == 1:
        return found, "exact"
    return found, "page"


def _skipped_rows(ctx: UnitContext, url: str, page: ListPage[Any], at: datetime) -> list[Row]:
    """Rows of ``skipped_items`` for a page's odd items (logged: each is a platform change)."""
    if not page.skipped:
        return []
    ctx.metrics.items_skipped.inc(len(page.skipped))
    page_url = without_params(url, CLIENT_PARAMS)
    for item in page.skipped:
        ctx.log.warning("list_item_skipped", url=page_url[:200], index=item["index"],
                        reason=item["reason"][:200])  # fmt: skip
    return [
        {
            "page_url": page_url,
            "item_index": item["index"],
            "unit_id": ctx.lease.unit_id,
            "reason": item["reason"][:2000],
            # JSON text: the column is jsonb, and the raw item may be any JSON value.
            "raw": json.dumps(item["raw"], separators=(",", ":"), default=str),
            "fetched_at": at,
        }
        for item in page.skipped
    ]


async def _walk(
    ctx: UnitContext,
    first_url: str,
    parser: ListPageParser[Any],
    on_page: Callable[[Batch, list[Any], str | None, datetime], None],
) -> bool:
    """Page from the resume cursor (or ``first_url``) to the end; False if the list is gone.

    ``on_page(batch, items, next_href, fetched_at)`` adds a page's rows to the batch.
    Items no model fits are skipped and recorded in ``skipped_items``; the page lands.
    Batches are landed every ``flush_rows`` rows, every few seconds, at the end and
    when the worker drains; each landing checkpoints the next page's URL. A list that
    answers 404 is only reported gone once a live user still answers.
    """
    url = ctx.cursor or first_url
    check_on_api_host(url, ctx.settings.api_base)
    batch = Batch()
    flush_every = _flush_period(ctx)
    # The attempt's first page lands at once (as if the last checkpoint were long
    # past): only a moved cursor gives an attempt back (see the coordinator's refund),
    # and under frequent kills on a slow machine an attempt may not live to its first
    # timed checkpoint.
    last_flush = -math.inf
    # Loop guard: a platform (or an attacker) whose next_href leads back to a page
    # already walked would keep the unit leased forever, heartbeats and all.
    seen = {_page_key(url)}
    max_pages = ctx.settings.max_pages
    while True:
        if len(seen) > max_pages:
            await ctx.land(batch, url)
            shown = without_params(url, CLIENT_PARAMS)[:200]
            raise PagingLoop(f"more than {max_pages} pages in one lease (max_pages): {shown}")
        got = (await ctx.api.fetch(url, parser)).data
        ctx.metrics.pages.labels(ctx.lease.kind).inc()
        if got is GONE:
            await ctx.land(batch, url)
            await ctx.confirm_absence()
            return False
        page: ListPage[Any] = got
        fetched_at = _now()
        on_page(batch, page.collection, page.next_href, fetched_at)
        batch.extend(tables.skipped_items, _skipped_rows(ctx, url, page, fetched_at))
        next_href = page.next_href
        if next_href:
            try:
                check_on_api_host(next_href, ctx.settings.api_base)
            except OffHostError:
                ctx.log.error("next_href_refused", url=next_href[:200])
                await ctx.land(batch, url)  # rows before the refused link are good
                raise
        if next_href is None:
            await ctx.land(batch, None)
            return True
        key = _page_key(next_href)
        if key in seen:
            shown = without_params(next_href, CLIENT_PARAMS)[:200]
            ctx.log.error("next_href_repeated", url=shown)
            await ctx.land(batch, url)
            raise PagingLoop(f"next_href repeats a page of this unit: {shown}")
        seen.add(key)
        due = len(batch) >= ctx.settings.flush_rows or (
            time.monotonic() - last_flush >= flush_every
        )
        if due or ctx.draining.is_set():
            await ctx.land(batch, next_href)
            batch = Batch()
            last_flush = time.monotonic()
            ctx.stop_if_draining()
        url = next_href


def _page_key(url: str) -> int:
    """A page's identity for the loop guard: its URL without the client's own parameters."""
    return hash(without_params(url, CLIENT_PARAMS))


async def _user_gone(ctx: UnitContext, user_id: int) -> UnitResult:
    """A user whose list answered 404 (a live user vouching for the platform): gone."""
    gone = Batch()
    gone.add(tables.user_ids_gone, records.gone_row(user_id, _now()))
    await ctx.land(gone, None)
    return UnitResult(ctx.rows)


async def follow_list(ctx: UnitContext) -> UnitResult:
    """A user's follower or following list: users plus follow events."""
    payload = FollowListPayload.model_validate(ctx.lease.payload)
    listed: list[int] = []
    resumed = ctx.cursor is not None

    def on_page(batch: Batch, items: list[User], next_href: str | None, at: datetime) -> None:
        page_time, source = _page_time(ctx, next_href, False, len(items))
        for user in items:
            batch.add(tables.users, records.user_row(user, at))
            if payload.direction == "followers":
                edge = (user.id, payload.user_id)
            else:
                edge = (payload.user_id, user.id)
            when = page_time or user.created_at
            batch.add(tables.follows, records.follow_row(*edge, when, source, at))
            listed.append(user.id)

    first = ctx.url(
        f"/users/{payload.user_id}/{payload.direction}",
        limit=ctx.settings.page_limit,
        linked_partitioning=1,
    )
    live = await _walk(ctx, first, _USER_LIST, on_page)
    if not live:
        return await _user_gone(ctx, payload.user_id)
    discovered: list[int] = []
    if payload.expand:
        if resumed:  # ids listed before the checkpoint were landed, not remembered
            listed.extend(await ctx.store.listed_users(payload.user_id, payload.direction))
        discovered = sorted(set(listed))
    return UnitResult(ctx.rows, discovered_user_ids=discovered)


async def user_tracks(ctx: UnitContext) -> UnitResult:
    """A user's tracks; with ``then_timelines`` their ids go back to the job."""
    payload = UserTracksPayload.model_validate(ctx.lease.payload)
    found: list[int] = []
    resumed = ctx.cursor is not None

    def on_page(batch: Batch, items: list[Track], next_href: str | None, at: datetime) -> None:
        for track in items:
            batch.add(tables.tracks, records.track_row(track, at))
            found.append(track.id)

    first = ctx.url(
        f"/users/{payload.user_id}/tracks", limit=ctx.settings.page_limit, linked_partitioning=1
    )
    live = await _walk(ctx, first, _TRACK_LIST, on_page)
    if not live:
        return await _user_gone(ctx, payload.user_id)
    discovered: list[int] = []
    if payload.then_timelines is not None:
        if resumed:
            found.extend(await ctx.store.user_track_ids(payload.user_id))
        discovered = sorted(set(found))
    return UnitResult(ctx.rows, discovered_track_ids=discovered)


async def track_list(ctx: UnitContext) -> UnitResult:
    """A track's reposters or likers with event times (exact: ``limit=1``)."""
    payload = TrackListPayload.model_validate(ctx.lease.payload)
    exact = payload.timestamps == "exact"
    table = tables.reposts if payload.list == "reposters" else tables.likes

    def on_page(batch: Batch, items: list[User], next_href: str | None, at: datetime) -> None:
        # More than one item despite limit=1: the cursor only bounds them ('page').
        page_time, source = _page_time(ctx, next_href, exact, len(items))
        for user in items:
            batch.add(tables.users, records.user_row(user, at))
            when = page_time or user.created_at
            batch.add(table, records.track_event_row(payload.track_id, user.id, when, source, at))

    first = ctx.url(
        f"/tracks/{payload.track_id}/{payload.list}",
        limit=1 if exact else ctx.settings.page_limit,
        linked_partitioning=1,
    )
    await _walk(ctx, first, _USER_LIST, on_page)
    return UnitResult(ctx.rows)


async def play_poll(ctx: UnitContext) -> UnitResult:
    """One snapshot of up to 50 tracks' counters in one request, by the platform's clock.

    ``/tracks?ids=`` answers the tracks it can show, in an order of its own; a track
    it leaves out (gone, private) gets no snapshot, as a 404 on ``/tracks/{id}`` did.
    """
    payload = PlayPollPayload.model_validate(ctx.lease.payload)
    wanted = set(payload.ids)
    url = ctx.url("/tracks", ids=",".join(map(str, payload.ids)))
    got = await ctx.api.fetch(url, _TRACK_BATCH)
    ctx.metrics.pages.labels("track").inc()
    if got.data is GONE:
        return UnitResult(0)
    answer: ListPage[Track] = got.data
    fetched_at = _now()
    observed_at = got.date or fetched_at
    batch = Batch()
    for track in answer.collection:
        if track.id not in wanted:
            raise InputError(f"/tracks?ids= answered track {track.id}, which was not asked for")
        batch.add(tables.tracks, records.track_row(track, fetched_at))
        batch.add(tables.track_stats, records.track_stats_row(track, observed_at))
    batch.extend(tables.skipped_items, _skipped_rows(ctx, url, answer, fetched_at))
    await ctx.land(batch, None)
    return UnitResult(ctx.rows)


Handler = Callable[[UnitContext], Awaitable[UnitResult]]

HANDLERS: dict[str, Handler] = {
    "user_range": user_range,
    "follow_list": follow_list,
    "user_tracks": user_tracks,
    "track_list": track_list,
    "play_poll": play_poll,
}
