"""CrowdCast: rank tracks by the shape of their live sharing graph, weighted by influence.

* **PageRank cache**: the PageRank of every user over the follower graph (edges follower
  -> followee, so rank flows to the followed). The network scoring run stores it in
  ``user_graph_stats``; :func:`pagerank` computes it when no cache exists, and
  :func:`pagerank_snapshots` recomputes it weekly from the follows made by then, so a
  track uploaded in the past is scored with the cache of its time (no later follow).
* **Activity graph** of a track: the artist plus everyone who shared it, each resharer
  linked to the user they most plausibly saw it from: the followee who shared it most
  recently before them (a follow that existed at that time), else the artist. With a
  **sliding window** of ``W`` hours (the paper's graph "over which the tweets are
  (still) spreading"), the graph at time ``t`` holds only the shares of ``(t - W, t]``:
  a resharer whose source shared before the window hangs from the artist.
* **Score** = NodeCount * AverageDistance / sum of the nodes' PageRank. AverageDistance
  (mean shortest-path length over connected pairs, undirected) is estimated for large
  graphs from a Clauset-Shalizi-Newman power-law fit of the degree sequence (igraph's
  ``power_law_fit``) as ln ln N / ln(beta - 1) when 2 < beta < 3, the scale-free
  "ultra-small world" law, and computed exactly by BFS otherwise.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import igraph as ig
import numpy as np
import numpy.typing as npt

from scoring.virality.cascades import BoolArray, Cascades, FloatArray, IntArray

# Activity-graph windows (hours) a CrowdCast model chooses from, per decision time, on
# its training data: the whole graph so far first (kept on ties), then sliding windows
# from half an hour (a burst) to half a day.
WINDOWS_HOURS = (math.inf, 0.5, 1.0, 2.0, 3.0, 6.0, 12.0)


def pagerank(
    follower: IntArray, followee: IntArray, damping: float = 0.85
) -> tuple[IntArray, FloatArray]:
    """PageRank of every user appearing in the follow edges: ``(user_ids, rank)``.

    Repeated follow events between one pair count once (a follow is a link, not a vote
    per event).
    """
    users, inverse = np.unique(np.concatenate([follower, followee]), return_inverse=True)
    m = follower.shape[0]
    pairs = np.unique(np.stack([inverse[:m], inverse[m:]], axis=1), axis=0)
    g = ig.Graph(n=users.shape[0], edges=pairs.tolist(), directed=True)
    rank = np.asarray(g.pagerank(directed=True, damping=damping), dtype=np.float64)
    return users.astype(np.int64), rank


@dataclass(frozen=True)
class RankLookup:
    """PageRank by user id; users missing from the cache get the smallest known rank."""

    user_ids: IntArray
    rank: FloatArray

    def __call__(self, users: IntArray) -> FloatArray:
        """Rank of each user."""
        if self.user_ids.size == 0:
            return np.full(users.shape[0], 1.0)
        pos = np.clip(np.searchsorted(self.user_ids, users), 0, self.user_ids.size - 1)
        found = self.user_ids[pos] == users
        return np.where(found, self.rank[pos], float(self.rank.min()))

    def cascade_ranks(
        self, cascades: Cascades, snapshot_hours: FloatArray | None = None
    ) -> tuple[FloatArray, FloatArray]:
        """Rank of every cascade's artist and of every sharer (one table for all)."""
        return self(cascades.artists), self(cascades.users)


@dataclass(frozen=True)
class RankSnapshots:
    """The PageRank cache as it stood over time: one table per refresh.

    ``times[i]`` (absolute hours) is when table ``i`` was computed, from the follows
    that existed then. A cascade reads the latest table computed at or before its
    snapshot time (its upload), so no follow made later reaches its score.
    """

    times: FloatArray
    tables: tuple[RankLookup, ...]

    def cascade_ranks(
        self, cascades: Cascades, snapshot_hours: FloatArray | None = None
    ) -> tuple[FloatArray, FloatArray]:
        """Ranks of artists and sharers from each cascade's snapshot."""
        at = np.full(cascades.n, np.inf) if snapshot_hours is None else snapshot_hours
        which = np.clip(np.searchsorted(self.times, at, side="right") - 1, 0, len(self.tables) - 1)
        artist = np.zeros(cascades.n)
        event = np.zeros(cascades.times.shape[0])
        cidx = cascades.cascade_of_event
        for i in np.unique(which):
            rows = which == i
            artist[rows] = self.tables[i](cascades.artists[rows])
            ev = rows[cidx]
            event[ev] = self.tables[i](cascades.users[ev])
        return artist, event


def pagerank_snapshots(
    follower: IntArray,
    followee: IntArray,
    follow_abs_hours: FloatArray,
    start_hours: float,
    end_hours: float,
    refresh_hours: float = 24.0 * 7,
    max_tables: int = 32,
) -> RankSnapshots:
    """PageRank refreshed every ``refresh_hours`` from ``start_hours`` to ``end_hours``,
    each table over the follows made up to its time (an empty graph ranks all alike).

    Uploads spread over years would need hundreds of weekly tables: the refresh is
    stretched so that at most ``max_tables`` are computed (older, never newer, data).
    """
    span = max(end_hours - start_hours, 0.0)
    refresh_hours = max(refresh_hours, span / max(max_tables - 1, 1))
    count = min(max_tables, max(1, int(np.ceil(span / refresh_hours - 1e-9)) + 1))
    times = start_hours + refresh_hours * np.arange(count, dtype=np.float64)
    tables = []
    for t in times:
        made = follow_abs_hours <= t
        if made.any():
            users, rank = pagerank(follower[made], followee[made])
        else:
            users, rank = np.zeros(0, dtype=np.int64), np.zeros(0)
        tables.append(RankLookup(users, rank))
    return RankSnapshots(times, tuple(tables))


def activity_parents(
    cascades: Cascades,
    follower: IntArray,
    followee: IntArray,
    follow_abs_hours: FloatArray | None,
    upload_abs_hours: FloatArray | None,
    *,
    chunk: int = 200_000,
) -> IntArray:
    """Per share event, who it came from: a followee who shared earlier, else the artist.

    Among several followees who shared earlier, the most recent one wins (the share a
    feed would show on top). Follow times and uploads are on one absolute clock (hours):
    a follow counts for a share only if it existed when the share happened (both
    ``follow_abs_hours`` and ``upload_abs_hours`` given); otherwise every follow counts.
    """
    n_events = cascades.times.shape[0]
    parents = np.repeat(cascades.artists, np.diff(cascades.offsets)).astype(np.int64)
    if n_events == 0 or follower.size == 0:
        return parents
    cidx = cascades.cascade_of_event
    share_abs = cascades.times.copy()
    if upload_abs_hours is not None:
        share_abs = share_abs + upload_abs_hours[cidx]
    # Follow lists grouped by follower, as sorted arrays for a vectorised join.
    order = np.lexsort((followee, follower))
    f_src, f_dst = follower[order], followee[order]
    f_t = follow_abs_hours[order] if follow_abs_hours is not None else None
    # (cascade, user) -> share time, to look up whether a followee shared and when.
    users_all = np.unique(np.concatenate([cascades.users, f_dst]))
    u_code = np.searchsorted(users_all, cascades.users)
    key = cidx * users_all.shape[0] + u_code
    korder = np.argsort(key)
    skey, stime = key[korder], cascades.times[korder]
    src_start = np.searchsorted(f_src, cascades.users, side="left")
    src_end = np.searchsorted(f_src, cascades.users, side="right")
    for lo in range(0, n_events, chunk):
        hi = min(n_events, lo + chunk)
        counts = src_end[lo:hi] - src_start[lo:hi]
        total = int(counts.sum())
        if total == 0:
            continue
        owner = np.repeat(np.arange(lo, hi), counts)
        first = np.repeat(src_start[lo:hi] - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        edge = np.arange(total) + first
        cand = f_dst[edge]
        ck = cidx[owner] * users_all.shape[0] + np.searchsorted(users_all, cand)
        pos = np.clip(np.searchsorted(skey, ck), 0, skey.shape[0] - 1)
        ok = skey[pos] == ck
        t_cand = stime[pos]
        ok &= t_cand < cascades.times[owner]
        if f_t is not None:
            ok &= f_t[edge] <= share_abs[owner]
        if not ok.any():
            continue
        owner, t_cand, cand = owner[ok], t_cand[ok], cand[ok]
        # Most recent earlier sharer among the followees: sort by time, keep the last.
        o = np.lexsort((t_cand, owner))
        owner, t_cand, cand = owner[o], t_cand[o], cand[o]
        last = np.ones(owner.shape[0], dtype=bool)
        last[:-1] = owner[1:] != owner[:-1]
        parents[owner[last]] = cand[last]
    return parents


def parent_share_times(cascades: Cascades, parents: IntArray) -> FloatArray:
    """When each share's parent shared the track (hours after upload); ``-inf`` where the
    parent is the artist (the root, in every window)."""
    cidx = cascades.cascade_of_event
    users_all = np.unique(np.concatenate([cascades.users, parents]))
    n_users = users_all.shape[0]
    key = cidx * n_users + np.searchsorted(users_all, cascades.users)
    order = np.argsort(key, kind="stable")
    skey, stime = key[order], cascades.times[order]
    if skey.size == 0:
        return np.zeros(0)
    pkey = cidx * n_users + np.searchsorted(users_all, parents)
    pos = np.clip(np.searchsorted(skey, pkey), 0, skey.shape[0] - 1)
    shared = (skey[pos] == pkey) & (parents != cascades.artists[cidx])
    return np.where(shared, stime[pos], -np.inf)


def estimated_average_distance(n_nodes: int, beta: float) -> float:
    """ln ln N / ln(beta - 1): the scale-free average path length for 2 < beta < 3."""
    return math.log(math.log(n_nodes)) / math.log(beta - 1.0)


@dataclass
class DistanceReport:
    """How the power-law estimate of AverageDistance compared with exact BFS."""

    compare_limit: int = 300
    graphs: int = 0
    estimated: int = 0
    exact_s: float = 0.0
    estimate_s: float = 0.0
    abs_errors: list[float] = field(default_factory=list)
    rel_errors: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float | int | None]:
        """Mean errors and the speedup of the estimate over BFS on the same graphs."""
        has = bool(self.abs_errors)
        return {
            "graphs": self.graphs,
            "graphs_with_scale_free_fit": self.estimated,
            "compared": len(self.abs_errors),
            "mean_abs_error": float(np.mean(self.abs_errors)) if has else None,
            "mean_rel_error": float(np.mean(self.rel_errors)) if has else None,
            "exact_s": self.exact_s,
            "estimate_s": self.estimate_s,
            "speedup": (self.exact_s / self.estimate_s) if has and self.estimate_s > 0 else None,
        }


def tree_features(
    artist: int,
    users: IntArray,
    parents: IntArray,
    *,
    min_nodes_estimate: int,
    report: DistanceReport | None = None,
) -> tuple[int, float]:
    """NodeCount and AverageDistance of one activity graph (artist plus ``users``)."""
    nodes = np.concatenate([[artist], users])
    n = int(nodes.shape[0])
    if n < 2:
        return n, 0.0
    ids, codes = np.unique(nodes, return_inverse=True)
    parent_codes = np.searchsorted(ids, parents)
    g = ig.Graph(
        n=ids.shape[0], edges=list(zip(parent_codes.tolist(), codes[1:].tolist(), strict=True))
    )
    if n < min_nodes_estimate:
        return n, float(g.average_path_length(directed=False, unconn=True))
    t0 = time.perf_counter()
    degrees = g.degree()
    # Only the exponent is needed: the coarsest p-value precision keeps igraph's
    # Monte-Carlo goodness-of-fit test (seconds per graph at its default) to one draw.
    fit = ig.power_law_fit(degrees, method="discrete", p_precision=0.5)
    beta = float(fit.alpha)
    scale_free = 2.0 < beta < 3.0
    estimate = estimated_average_distance(n, beta) if scale_free else float("nan")
    t_est = time.perf_counter() - t0
    if report is not None:
        report.graphs += 1
        report.estimated += int(scale_free)
    # The exact BFS runs when the estimate does not apply, and on the first
    # ``compare_limit`` scale-free graphs to measure the estimate's error and speedup.
    comparing = scale_free and report is not None and len(report.abs_errors) < report.compare_limit
    if scale_free and not comparing:
        return n, estimate
    t0 = time.perf_counter()
    exact = float(g.average_path_length(directed=False, unconn=True))
    t_exact = time.perf_counter() - t0
    if comparing and report is not None:
        report.estimate_s += t_est
        report.exact_s += t_exact
        report.abs_errors.append(abs(estimate - exact))
        report.rel_errors.append(abs(estimate - exact) / exact if exact > 0 else 0.0)
    return n, estimate if scale_free else exact


@dataclass(frozen=True)
class CrowdcastFeatures:
    """Per cascade and decision time: NodeCount, AverageDistance, sum of PageRank, score."""

    node_count: npt.NDArray[np.int64]
    average_distance: FloatArray
    pagerank_sum: FloatArray

    @property
    def score(self) -> FloatArray:
        """NodeCount * AverageDistance / sum PageRank (0 for tracks nobody shared)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            s = self.node_count * self.average_distance / self.pagerank_sum
        return np.where(self.node_count > 1, s, 0.0)


def features(
    cascades: Cascades,
    parents: IntArray,
    ranks: RankLookup | RankSnapshots,
    grid: FloatArray,
    *,
    window_hours: float = math.inf,
    min_nodes_estimate: int = 30,
    report: DistanceReport | None = None,
    measured: BoolArray | None = None,
    snapshot_hours: FloatArray | None = None,
) -> CrowdcastFeatures:
    """CrowdCast features of every cascade at every decision time ``t``, over the
    activity graph of the shares of ``(t - window_hours, t]`` (default: all so far).

    Parents never depend on later shares, so the graph at time ``t`` is a slice of the
    share list; each distinct slice is measured once. A share whose parent shared before
    the window hangs from the artist (the window holds who is still spreading it).
    Graphs are measured only at the decision times ``measured`` selects (default: hourly
    for a day, then every six hours); in between, the last measurement holds (older
    data, never newer). With :class:`RankSnapshots`, each cascade's PageRank comes from
    the table of its ``snapshot_hours`` (absolute hours, e.g. its upload).
    """
    if measured is None:
        measured = (grid <= 24.0) | np.isclose(np.mod(grid, 6.0), 0.0)
    measured = measured.copy()
    measured[0] = True
    last = np.maximum.accumulate(np.where(measured, np.arange(grid.shape[0]), 0))
    ends = cascades.size_matrix(grid)[:, last]
    begins = (
        cascades.size_matrix(grid - window_hours)[:, last]
        if math.isfinite(window_hours)
        else np.zeros_like(ends)
    )
    parent_t = parent_share_times(cascades, parents)
    n_grid = grid.shape[0]
    node_count = np.ones((cascades.n, n_grid), dtype=np.int64)
    distance = np.zeros((cascades.n, n_grid))
    artist_rank, event_rank = ranks.cascade_ranks(cascades, snapshot_hours)
    rank_sum = np.repeat(artist_rank[:, None], n_grid, axis=1)
    cum_rank = np.concatenate([[0.0], np.cumsum(event_rank)])
    for c in np.nonzero(ends[:, -1] > 0)[0]:
        lo = int(cascades.offsets[c])
        artist = int(cascades.artists[c])
        end, begin = ends[c], begins[c]
        rank_sum[c] += cum_rank[lo + end] - cum_rank[lo + begin]
        live = end > begin
        for a, b in np.unique(np.stack([begin[live], end[live]], axis=1), axis=0).tolist():
            cols = (begin == a) & (end == b)
            # A parent is in the window iff it shared at or after the window's first share.
            par = np.where(
                parent_t[lo + a : lo + b] < cascades.times[lo + a], artist, parents[lo + a : lo + b]
            )
            n, d = tree_features(
                artist,
                cascades.users[lo + a : lo + b],
                par,
                min_nodes_estimate=min_nodes_estimate,
                report=report,
            )
            node_count[c, cols] = n
            distance[c, cols] = d
    return CrowdcastFeatures(node_count, distance, rank_sum)


def top_k(track_ids: IntArray, scores: FloatArray, k: int) -> IntArray:
    """The ``k`` track ids with the highest scores, best first (ties by track id)."""
    order = np.lexsort((track_ids, -scores))
    return track_ids[order[:k]]
