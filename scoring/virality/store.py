"""All of the virality run's SQL: what it reads of the crawled tables.

It reads tracks, repost (optionally like) events, follow events and the PageRank
cache (``user_graph_stats`` of the latest finished network run); the run writes its
``virality_scores`` through :mod:`scoring.runs`.
"""

from __future__ import annotations

from typing import Any

import asyncpg


async def read(conn: asyncpg.Connection, include_likes: bool) -> dict[str, Any]:
    """Tracks with an observed cascade, timed shares, follows, the PageRank cache, as-of.

    Also how many shares were dropped and how many follows are untimed (see below).
    """
    # Only tracks whose cascade was observed: their reposters list was crawled (a done
    # track_list unit), or they had no repost when fetched. A track found by a user_tracks
    # crawl without its timeline has an unknown cascade, not an empty one.
    tracks = await conn.fetch(
        "SELECT t.id, t.user_id, extract(epoch FROM t.created_at) AS up FROM tracks t"
        " WHERE t.created_at IS NOT NULL AND (coalesce(t.reposts_count, 0) = 0 OR EXISTS ("
        "  SELECT 1 FROM work_units u WHERE u.kind = 'track_list' AND u.state = 'done'"
        "  AND u.payload->>'list' = 'reposters' AND (u.payload->>'track_id')::bigint = t.id))"
        " ORDER BY t.id"
    )
    # Only event times whose source can be trusted: from the item, a one-item page's
    # cursor, or a page's cursor bound. A 'none' time (no cursor time: the listed
    # user's creation stands in for the key) would date a share or a follow wrongly:
    # such shares are dropped and such follows count in no audience as of a decision.
    share_sql = (
        "SELECT track_id, user_id, extract(epoch FROM event_time) AS t FROM reposts"
        " WHERE time_source <> 'none'"
    )
    untimed_sql = "SELECT count(*) FILTER (WHERE time_source = 'none') FROM reposts"
    if include_likes:
        share_sql += (
            " UNION ALL SELECT track_id, user_id, extract(epoch FROM event_time) FROM likes"
            " WHERE time_source <> 'none'"
        )
        untimed_sql += " UNION ALL SELECT count(*) FILTER (WHERE time_source = 'none') FROM likes"
    shares = await conn.fetch(share_sql)
    untimed = sum(int(r[0]) for r in await conn.fetch(untimed_sql))
    follows = await conn.fetch(
        "SELECT follower_id, followee_id, CASE WHEN time_source = 'none' THEN NULL"
        " ELSE extract(epoch FROM event_time) END AS t FROM follows"
    )
    ranks = await conn.fetch(
        "SELECT s.user_id, s.pagerank FROM user_graph_stats s WHERE s.run_id = ("
        " SELECT max(r.id) FROM scoring_runs r WHERE r.model = 'network' AND r.state = 'done'"
        " AND EXISTS (SELECT 1 FROM user_graph_stats u WHERE u.run_id = r.id)) ORDER BY s.user_id"
    )
    as_of = await conn.fetchval(
        "SELECT extract(epoch FROM greatest((SELECT max(fetched_at) FROM reposts),"
        " (SELECT max(fetched_at) FROM tracks)))"
    )
    return {
        "tracks": tracks,
        "shares": shares,
        "follows": follows,
        "ranks": ranks,
        "as_of": as_of,
        "untimed_shares": untimed,
        "untimed_follows": sum(1 for r in follows if r["t"] is None),
    }
