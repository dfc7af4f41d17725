"""All SQL of the spam model: users, their links and follow events in; result rows out.

Users, links and follow events are streamed with server-side cursors in chunks; follow
events keep their time (repeated follows of one pair are separate events).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import asyncpg
import numpy as np

from scoring.spam.behaviour import FollowEvents
from scoring.spam.core import SpamInput, SpamModel

USERS_SQL = (
    "SELECT id, followers_count, followings_count, track_count, likes_count,"
    " reposts_count, playlist_count, comments_count, plan, description,"
    " extract(epoch FROM created_at)::float8 AS created_s FROM users ORDER BY id"
)
PROFILES_SQL = "SELECT user_id, url, title FROM web_profiles ORDER BY user_id, url"
# A page bound is the time of a page's last item, not of each event on the page: it
# would make a human's few follows over years look like one burst, so it counts as
# unknown here (timing features then use the events with their own time only).
FOLLOWS_SQL = (
    "SELECT follower_id, followee_id, CASE WHEN time_source IN ('item', 'exact')"
    " THEN extract(epoch FROM event_time)::float8 END FROM follows"
)

SPAM_SCORES_COLUMNS = ("user_id", "label", "is_spam", "probability", "cluster", "kind")

_COUNTS = (
    "followers_count",
    "followings_count",
    "track_count",
    "likes_count",
    "reposts_count",
    "playlist_count",
    "comments_count",
)


def _f(value: Any) -> float:
    return float("nan") if value is None else float(value)


async def read_input(conn: asyncpg.Connection, chunk: int = 50_000) -> SpamInput:
    """Every crawled user's spam-model fields as a :class:`SpamInput`."""
    ids: list[int] = []
    counts: dict[str, list[float]] = {c: [] for c in _COUNTS}
    plans: list[str | None] = []
    descriptions: list[str | None] = []
    created: list[float] = []
    async with conn.transaction(readonly=True):
        cursor = await conn.cursor(USERS_SQL)
        while rows := await cursor.fetch(chunk):
            for r in rows:
                ids.append(int(r["id"]))
                for c in _COUNTS:
                    counts[c].append(_f(r[c]))
                plans.append(r["plan"])
                descriptions.append(r["description"])
                created.append(_f(r["created_s"]))
        urls: dict[int, list[str]] = defaultdict(list)
        titles: dict[int, list[str | None]] = defaultdict(list)
        cursor = await conn.cursor(PROFILES_SQL)
        while rows := await cursor.fetch(chunk):
            for r in rows:
                urls[int(r["user_id"])].append(r["url"])
                titles[int(r["user_id"])].append(r["title"])
        follows = await _read_follows(conn, chunk)
    user_ids = np.asarray(ids, dtype=np.int64)
    return SpamInput(
        user_id=user_ids,
        followers=np.asarray(counts["followers_count"]),
        followings=np.asarray(counts["followings_count"]),
        tracks=np.asarray(counts["track_count"]),
        likes=np.asarray(counts["likes_count"]),
        reposts=np.asarray(counts["reposts_count"]),
        playlists=np.asarray(counts["playlist_count"]),
        comments=np.asarray(counts["comments_count"]),
        plan=plans,
        description=descriptions,
        created_at_s=np.asarray(created, dtype=np.float64),
        urls=[urls.get(u, []) for u in ids],
        url_titles=[titles.get(u, []) for u in ids],
        follows=follows,
    )


async def _read_follows(conn: asyncpg.Connection, chunk: int) -> FollowEvents:
    """Every follow event (inside the caller's read-only transaction)."""
    pairs: list[np.ndarray] = []
    times: list[np.ndarray] = []
    cursor = await conn.cursor(FOLLOWS_SQL)
    while rows := await cursor.fetch(chunk):
        pairs.append(np.array([(r[0], r[1]) for r in rows], dtype=np.int64))
        times.append(np.array([np.nan if r[2] is None else r[2] for r in rows]))
    if not pairs:
        empty = np.empty(0, np.int64)
        return FollowEvents(empty, empty, np.empty(0, np.float64))
    both = np.concatenate(pairs)
    return FollowEvents(both[:, 0].copy(), both[:, 1].copy(), np.concatenate(times))


def spam_rows(user_ids: np.ndarray, model: SpamModel) -> Iterator[Sequence[Any]]:
    """``spam_scores`` records (without ``run_id``) of the scored users."""
    groups = model.groups
    for i, uid in enumerate(user_ids.tolist()):
        spam = bool(model.is_spam[i])
        label = "spam" if spam else groups[int(model.predicted[i])]
        yield (
            uid,
            label,
            spam,
            float(model.probability[i]),
            int(model.cluster[i]),
            model.kind[i] if spam else None,
        )
