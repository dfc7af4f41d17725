"""All SQL of the network model: stream the follow graph in, shape result rows out.

The follow table can hold tens of millions of events; we let PostgreSQL collapse them
into distinct pairs with their event count (``GROUP BY``) and stream the result with a
server-side cursor into numpy chunks, so Python never holds a row object per event.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import asyncpg
import numpy as np

from scoring.network.core import FollowGraph, GraphStats, UserStats, build_graph

PAIRS_SQL = (
    "SELECT follower_id, followee_id, count(*)::int AS events FROM follows"
    " WHERE follower_id <> followee_id GROUP BY follower_id, followee_id"
)

NETWORK_STATS_COLUMNS = (
    "scope",
    "artist_id",
    "nodes",
    "edges",
    "clustering",
    "assortativity_out_in",
    "assortativity_in_in",
    "assortativity_out_out",
    "reciprocity",
    "motif_counts",
    "motif_z",
)
USER_GRAPH_STATS_COLUMNS = (
    "user_id",
    "pagerank",
    "in_degree",
    "out_degree",
    "max_follow_multiplicity",
    "repeated_follows",
)


async def read_graph(conn: asyncpg.Connection, chunk: int = 100_000) -> FollowGraph:
    """The crawled follow graph as a :class:`FollowGraph` (distinct pairs + multiplicity)."""
    srcs: list[np.ndarray] = []
    dsts: list[np.ndarray] = []
    mults: list[np.ndarray] = []
    async with conn.transaction(readonly=True):
        cursor = await conn.cursor(PAIRS_SQL)
        while True:
            rows = await cursor.fetch(chunk)
            if not rows:
                break
            flat = (value for row in rows for value in row)
            block = np.fromiter(flat, dtype=np.int64, count=3 * len(rows)).reshape(-1, 3)
            srcs.append(block[:, 0])
            dsts.append(block[:, 1])
            mults.append(block[:, 2].astype(np.int32))
            del rows
    if not srcs:
        return build_graph(np.empty(0, np.int64), np.empty(0, np.int64))
    return build_graph(np.concatenate(srcs), np.concatenate(dsts), np.concatenate(mults))


async def top_artists(conn: asyncpg.Connection, limit: int) -> list[int]:
    """The ``limit`` most-followed users with tracks (the default ego centres)."""
    rows = await conn.fetch(
        "SELECT id FROM users WHERE coalesce(track_count, 0) > 0"
        " ORDER BY followers_count DESC NULLS LAST, id LIMIT $1",
        limit,
    )
    return [int(r["id"]) for r in rows]


def _num(value: float) -> float | None:
    """NaN (undefined, e.g. assortativity of a constant degree sequence) is stored NULL."""
    return None if math.isnan(value) else float(value)


def network_stats_row(scope: str, artist_id: int | None, stats: GraphStats) -> tuple[Any, ...]:
    """One ``network_stats`` record (without ``run_id``)."""
    return (
        scope,
        artist_id,
        stats.nodes,
        stats.edges,
        _num(stats.clustering),
        _num(stats.assortativity_out_in),
        _num(stats.assortativity_in_in),
        _num(stats.assortativity_out_out),
        _num(stats.reciprocity),
        [int(c) for c in stats.motif_counts],
        [_num(float(z)) for z in stats.motif_z],
    )


def user_graph_rows(graph: FollowGraph, users: UserStats) -> Iterator[Sequence[Any]]:
    """``user_graph_stats`` records (without ``run_id``), generated lazily."""
    ids = graph.ids.tolist()
    pr = users.pagerank.tolist()
    ind = users.in_degree.tolist()
    outd = users.out_degree.tolist()
    mm = users.max_follow_multiplicity.tolist()
    rep = users.repeated_follows.tolist()
    for i, uid in enumerate(ids):
        yield (uid, pr[i], ind[i], outd[i], mm[i], rep[i])
