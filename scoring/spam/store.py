"""All SQL of the spam model: users, their links and follow pairs in; result rows out.

Users are streamed with a server-side cursor in chunks; follow pairs come from the
network reader (distinct pairs with their event count, aggregated by PostgreSQL).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import asyncpg
import numpy as np

from scoring.network.store import read_graph
from scoring.spam.core import SpamInput, SpamModel, graph_features

USERS_SQL = (
    "SELECT id, followers_count, followings_count, track_count, likes_count,"
    " reposts_count, playlist_count, comments_count, plan, description,"
    " extract(epoch FROM created_at)::float8 AS created_s FROM users ORDER BY id"
)
PROFILES_SQL = "SELECT user_id, url, title FROM web_profiles ORDER BY user_id, url"

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
    user_ids = np.asarray(ids, dtype=np.int64)
    graph = await read_graph(conn)
    recip, max_mult = graph_features(
        user_ids,
        graph.ids[graph.src],
        graph.ids[graph.dst],
        graph.multiplicity.astype(np.int64),
    )
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
        reciprocity=recip,
        max_multiplicity=max_mult,
    )


def spam_rows(user_ids: np.ndarray, model: SpamModel) -> Iterator[Sequence[Any]]:
    """``spam_scores`` records (without ``run_id``) of the scored users."""
    names = model.cluster_names
    for i, uid in enumerate(user_ids.tolist()):
        spam = bool(model.is_spam[i])
        label = "spam" if spam else names[int(model.predicted[i])]
        yield (
            uid,
            label,
            spam,
            float(model.probability[i]),
            int(model.cluster[i]),
            model.kind[i] if spam else None,
        )
