"""The ``network`` scoring model: global and per-artist ego-network statistics.

Reads the follow graph (see :mod:`scoring.network.store`), computes whole-graph figures
for the global graph and each artist's ego network, and per-user PageRank, degrees and
follow multiplicity (``user_graph_stats``, also the virality model's PageRank cache).
"""

from __future__ import annotations

import time
from typing import Any, Literal

import asyncpg
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from scoring.network import core, store
from scoring.registry import ScoringModel
from scoring.runs import CannotScore, ResultRows, ScoreResult

VERSION = "network-1"


class NetworkParams(BaseModel):
    """Parameters of a network run."""

    model_config = ConfigDict(extra="forbid")

    scope: Literal["global", "ego", "both"] = Field(
        default="both", description="the whole graph, artists' ego networks, or both"
    )
    artists: list[int] | None = Field(
        default=None, description="ego centres; default: the most-followed users with tracks"
    )
    max_artists: int = Field(default=20, ge=1, le=10_000)
    hops: int = Field(default=1, ge=1, le=3, description="ego radius in undirected hops")
    randomizations: int = Field(
        default=10, ge=0, le=1000, description="degree-preserving rewirings for motif z"
    )
    global_randomizations: int | None = Field(
        default=None, ge=0, le=1000, description="override for the global graph (costly)"
    )
    swaps_per_edge: float = Field(default=3.0, gt=0, le=100)
    damping: float = Field(default=0.85, gt=0, lt=1)
    seed: int = 0


TOP_REPEATERS = 20


def _summary(stats: core.GraphStats) -> dict[str, Any]:
    return {
        "nodes": stats.nodes,
        "edges": stats.edges,
        "clustering": stats.clustering,
        "assortativity_out_in": stats.assortativity_out_in,
        "assortativity_in_in": stats.assortativity_in_in,
        "assortativity_out_out": stats.assortativity_out_out,
        "reciprocity": stats.reciprocity,
        "motifs": dict(zip(core.MOTIF_NAMES, stats.motif_counts.tolist(), strict=True)),
        "motif_z": dict(zip(core.MOTIF_NAMES, stats.motif_z.tolist(), strict=True)),
    }


async def compute(conn: asyncpg.Connection, params: dict[str, Any]) -> ScoreResult:
    """Read the follow graph and compute the network run's figures and rows."""
    p = NetworkParams.model_validate(params)
    durations: dict[str, float] = {}
    t0 = time.perf_counter()
    graph = await store.read_graph(conn)
    durations["read_s"] = time.perf_counter() - t0
    if graph.m == 0:
        raise CannotScore("the follow graph is empty: no follow between two users is crawled")
    metrics: dict[str, Any] = {
        "motif_names": list(core.MOTIF_NAMES),
        "users": graph.n,
        "follow_pairs": graph.m,
        "follow_events": int(graph.multiplicity.sum()),
        "repeated_pairs": int((graph.multiplicity > 1).sum()),
        "multi_edge_dyads": core.multi_edge_dyads(graph),
    }
    stats_rows: list[tuple[Any, ...]] = []
    rows: list[ResultRows] = []

    if p.scope in ("global", "both"):
        t = time.perf_counter()
        randomizations = (
            p.randomizations if p.global_randomizations is None else p.global_randomizations
        )
        stats = core.graph_stats(
            graph.n,
            graph.src,
            graph.dst,
            randomizations=randomizations,
            swaps_per_edge=p.swaps_per_edge,
            seed=p.seed,
        )
        stats_rows.append(store.network_stats_row("global", None, stats))
        metrics["global"] = _summary(stats)
        durations["global_s"] = time.perf_counter() - t
        t = time.perf_counter()
        users = core.user_stats(graph, p.damping)
        rows.append(
            ResultRows(
                "user_graph_stats",
                store.USER_GRAPH_STATS_COLUMNS,
                store.user_graph_rows(graph, users),
            )
        )
        top = np.argsort(-users.repeated_follows, kind="stable")[:TOP_REPEATERS]
        metrics["top_repeat_followers"] = [
            {
                "user_id": int(graph.ids[i]),
                "repeated_follows": int(users.repeated_follows[i]),
                "max_follow_multiplicity": int(users.max_follow_multiplicity[i]),
                "out_degree": int(users.out_degree[i]),
            }
            for i in top.tolist()
            if users.repeated_follows[i] > 0
        ]
        durations["users_s"] = time.perf_counter() - t

    if p.scope in ("ego", "both"):
        t = time.perf_counter()
        artists = (
            p.artists if p.artists is not None else await store.top_artists(conn, p.max_artists)
        )
        skipped: dict[str, str] = {}
        index = np.searchsorted(graph.ids, np.asarray(artists, dtype=np.int64))
        present = [
            (a, int(i))
            for a, i in zip(artists, index.tolist(), strict=True)
            if i < graph.n and graph.ids[i] == a
        ]
        found = {a for a, _ in present}
        for a in artists:
            if a not in found:
                skipped[str(a)] = "no follow in the crawled graph"
        members = core.ego_members(graph, [i for _, i in present], p.hops)
        scored = 0
        for (artist, _), ego in zip(present, members, strict=True):
            n, src, dst = core.induced(graph.n, graph.src, graph.dst, ego)
            if src.shape[0] == 0:
                skipped[str(artist)] = "ego network has no follow"
                continue
            stats = core.graph_stats(
                n,
                src,
                dst,
                randomizations=p.randomizations,
                swaps_per_edge=p.swaps_per_edge,
                seed=p.seed + artist,
            )
            stats_rows.append(store.network_stats_row(f"ego:{artist}", artist, stats))
            scored += 1
        metrics["egos_scored"] = scored
        metrics["egos_skipped"] = skipped
        durations["egos_s"] = time.perf_counter() - t
        if p.scope == "ego" and scored == 0:
            reason = "; ".join(f"{a}: {why}" for a, why in skipped.items()) or "no artist"
            raise CannotScore(f"no artist ego network could be scored ({reason})")

    rows.insert(0, ResultRows("network_stats", store.NETWORK_STATS_COLUMNS, stats_rows))
    return ScoreResult(metrics=metrics, rows=rows, durations=durations)


MODEL = ScoringModel(
    name="network",
    version=VERSION,
    description="clustering, assortativity, reciprocity, PageRank and 13 three-node motifs",
    params=NetworkParams,
    compute=compute,
)
