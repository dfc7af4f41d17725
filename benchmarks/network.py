"""Network statistics benchmark (one run, one JSON object on stdout).

1. The 13-motif count of soundfleet (degree pairs + classified triangles) on a
   1,000,000-edge directed graph vs igraph's bare ``triad_census`` on the same graph
   (graph already built; target: soundfleet <= 1.5x igraph's time). Both must agree.
2. soundfleet's whole figure set (clustering, three assortativities, reciprocity, 13
   motifs, PageRank) vs networkx's functions on a 100,000-edge graph.

``python -m benchmarks.network [--edges N] [--small-edges N] [--seed S]``
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import igraph as ig
import networkx as nx
import numpy as np

from scoring.network import core


def synthetic_follows(n_edges: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A follow-like directed graph: heavy-tailed in-degrees, some reciprocity."""
    rng = np.random.default_rng(seed)
    n = max(10, n_edges // 5)
    draws = int(n_edges * 1.2) + 10  # duplicates and self loops are dropped below
    while True:
        src = rng.integers(0, n, draws)
        # Pareto-tailed targets (popular accounts), bounded so the census stays tractable.
        dst = np.minimum((rng.pareto(2.5, draws) * n / 50).astype(np.int64), n - 1)
        back = rng.random(draws) < 0.15
        src, dst = np.where(back, dst, src), np.where(back, src, dst)
        graph = core.build_graph(src, dst)
        if graph.m >= n_edges:
            break
        draws = int(draws * 1.3)
    # Exactly n_edges distinct pairs, chosen at random (not by id order).
    keep = np.sort(rng.choice(graph.m, size=n_edges, replace=False))
    return graph.src[keep], graph.dst[keep]


def _timed(fn: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def motif_benchmark(n_edges: int, seed: int) -> dict[str, Any]:
    """soundfleet's 13 motif counts vs igraph's bare triad census."""
    src, dst = synthetic_follows(n_edges, seed)
    n = int(max(src.max(), dst.max())) + 1
    graph = ig.Graph(n=n, edges=np.column_stack([src, dst]).tolist(), directed=True)
    ours, t_ours = _timed(lambda: core.motif_counts(n, src, dst))
    census, t_igraph = _timed(graph.triad_census)
    igraph_13 = [int(c) for c in list(census)[3:]]
    return {
        "nodes": n,
        "edges": int(src.shape[0]),
        "soundfleet_motifs_s": round(t_ours, 3),
        "igraph_triad_census_s": round(t_igraph, 3),
        "ratio_soundfleet_over_igraph": round(t_ours / t_igraph, 3),
        "target_ratio_max": 1.5,
        "meets_target": t_ours / t_igraph <= 1.5,
        "counts_equal": ours.tolist() == igraph_13,
        "motif_counts": dict(zip(core.MOTIF_NAMES, ours.tolist(), strict=True)),
    }


def networkx_benchmark(n_edges: int, seed: int) -> dict[str, Any]:
    """All figures of one graph: soundfleet vs networkx, with the values compared."""
    src, dst = synthetic_follows(n_edges, seed + 1)
    n = int(max(src.max(), dst.max())) + 1
    t0 = time.perf_counter()
    stats = core.graph_stats(n, src, dst, randomizations=0)
    pr = core.pagerank(n, src, dst)
    t_ours = time.perf_counter() - t0

    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from(zip(src.tolist(), dst.tolist(), strict=True))
    t0 = time.perf_counter()
    nx_clustering = nx.transitivity(g.to_undirected())
    nx_assort = [
        nx.degree_assortativity_coefficient(g, x=x, y=y)
        for x, y in (("out", "in"), ("in", "in"), ("out", "out"))
    ]
    nx_recip = nx.reciprocity(g)
    census = nx.triadic_census(g)
    nx_pr = nx.pagerank(g, alpha=0.85, tol=1e-10)
    t_nx = time.perf_counter() - t0

    ours_assort = [
        stats.assortativity_out_in,
        stats.assortativity_in_in,
        stats.assortativity_out_out,
    ]
    pr_nx = np.array([nx_pr[i] for i in range(n)])
    return {
        "nodes": n,
        "edges": int(src.shape[0]),
        "soundfleet_s": round(t_ours, 3),
        "networkx_s": round(t_nx, 3),
        "speedup": round(t_nx / t_ours, 1),
        "values_equal": {
            "clustering": bool(np.isclose(stats.clustering, nx_clustering, rtol=1e-9)),
            "assortativity": bool(np.allclose(ours_assort, nx_assort, rtol=1e-9)),
            "reciprocity": bool(np.isclose(stats.reciprocity, nx_recip, rtol=1e-12)),
            "motifs": stats.motif_counts.tolist() == [census[k] for k in core.MOTIF_NAMES],
            "pagerank_max_abs_diff": float(np.abs(pr - pr_nx).max()),
        },
    }


def main() -> None:
    """Run both benchmarks and print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", type=int, default=1_000_000)
    parser.add_argument("--small-edges", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    out = {
        "benchmark": "network",
        "motifs_vs_igraph": motif_benchmark(args.edges, args.seed),
        "soundfleet_vs_networkx": networkx_benchmark(args.small_edges, args.seed),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
