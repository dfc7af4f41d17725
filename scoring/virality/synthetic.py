"""A faithful cascade process for tests and the 100,000-cascade benchmark.

The simulator's world (``simulator/``) is the ground truth the models are evaluated
on; scoring cannot import it (service layers are independent), and its default world
holds far fewer than 100,000 tracks. This generator follows the same process so
benchmarks and unit tests can create any number of cascades: a directed follower graph
with power-law in- and out-degrees (igraph's static power-law game), artists drawn in
proportion to their audience, a per-track appeal drawn from a log-normal, and a
continuous-time independent cascade: every follower of a sharer is exposed when the
sharer shares, reposts with probability ``appeal / mean followers`` after a log-normal
reaction delay, and attention decays so late exposures convert less.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import igraph as ig
import numpy as np

from scoring.virality.cascades import Cascades, FloatArray, IntArray, from_events


@dataclass(frozen=True)
class FollowerGraph:
    """Follow edges ``follower -> followee`` over users ``0..n_users-1``."""

    n_users: int
    follower: IntArray
    followee: IntArray
    follow_hours: FloatArray

    def followers_count(self) -> IntArray:
        """Number of followers of every user."""
        return np.bincount(self.followee, minlength=self.n_users).astype(np.int64)


@dataclass(frozen=True)
class SyntheticWorld:
    """A follower graph and the share cascades of its tracks."""

    graph: FollowerGraph
    cascades: Cascades


def power_law_graph(
    n_users: int, mean_follows: float, seed: int, exponent_in: float = 2.2
) -> FollowerGraph:
    """A directed graph whose follower counts follow a power law (exponent ``exponent_in``)."""
    import random

    # igraph's game draws from Python's RNG: seed it for a reproducible world.
    random.seed(seed)
    g = ig.Graph.Static_Power_Law(
        n_users,
        int(n_users * mean_follows),
        exponent_out=3.0,
        exponent_in=exponent_in,
        allowed_edge_types="simple",
    )
    edges = np.asarray(g.get_edgelist(), dtype=np.int64).reshape(-1, 2)
    rng = np.random.default_rng(seed)
    # Follows formed before the tracks appear (negative hours = before upload).
    follow_hours = -rng.uniform(24.0, 24.0 * 365, size=edges.shape[0])
    return FollowerGraph(n_users, edges[:, 0], edges[:, 1], follow_hours)


def generate(
    n_tracks: int,
    *,
    n_users: int = 20_000,
    mean_follows: float = 20.0,
    seed: int = 0,
    horizon_hours: float = 72.0,
    appeal_mu: float = -0.9,
    appeal_sigma: float = 0.75,
    delay_median_hours: float = 1.5,
    delay_sigma: float = 1.0,
    attention_hours: float = 24.0,
    max_size: int = 2_000,
    artist_bias: float = 0.5,
    graph: FollowerGraph | None = None,
) -> SyntheticWorld:
    """Generate ``n_tracks`` cascades on a power-law follower graph (see the module doc)."""
    rng = np.random.default_rng(seed)
    g = graph or power_law_graph(n_users, mean_follows, seed)
    n = g.n_users
    order = np.argsort(g.followee, kind="stable")
    followers_of = g.follower[order]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(g.followee, minlength=n), out=indptr[1:])
    counts = np.diff(indptr)
    mean_followers = max(float(counts.mean()), 1.0)
    weights = (counts + 1.0) ** artist_bias
    artists = rng.choice(n, size=n_tracks, p=weights / weights.sum())
    appeal = rng.lognormal(appeal_mu, appeal_sigma, size=n_tracks)
    seen = np.full(n, -1, dtype=np.int64)
    ev_track: list[int] = []
    ev_user: list[int] = []
    ev_time: list[float] = []
    mu = np.log(delay_median_hours)
    for c in range(n_tracks):
        p = min(1.0, appeal[c] / mean_followers)
        artist = int(artists[c])
        seen[artist] = c
        heap: list[tuple[float, int]] = [(0.0, artist)]
        size = 0
        while heap and size < max_size:
            t, u = heapq.heappop(heap)
            if u != artist:
                if seen[u] == c:
                    continue
                seen[u] = c
                ev_track.append(c)
                ev_user.append(u)
                ev_time.append(t)
                size += 1
            fol = followers_of[indptr[u] : indptr[u + 1]]
            if fol.size == 0:
                continue
            # Attention decays with the track's age: late exposures convert less.
            hit = fol[rng.random(fol.size) < p * np.exp(-t / attention_hours)]
            hit = hit[seen[hit] != c]
            if hit.size == 0:
                continue
            when = t + rng.lognormal(mu, delay_sigma, size=hit.size)
            for v, tv in zip(hit.tolist(), when.tolist(), strict=True):
                if tv <= horizon_hours:
                    heapq.heappush(heap, (tv, v))
    cascades = from_events(
        np.arange(n_tracks),
        artists,
        np.asarray(ev_track, dtype=np.int64),
        np.asarray(ev_user, dtype=np.int64),
        np.asarray(ev_time),
        np.full(n_tracks, horizon_hours),
    )
    return SyntheticWorld(g, cascades)
