"""scoring.network.core equals networkx on small graphs (multi-edge, reciprocal, empty)."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

from scoring.network import core

# (follower, followee) events; repeated pairs are repeated follow events.
GRAPHS: dict[str, list[tuple[int, int]]] = {
    "path": [(1, 2), (2, 3), (3, 4)],
    "reciprocal_pair_and_triangle": [(1, 2), (2, 1), (2, 3), (3, 1), (1, 3), (4, 1)],
    "cycle_and_transitive": [(1, 2), (2, 3), (3, 1), (4, 5), (5, 6), (4, 6), (6, 1)],
    "multi_edges": [(1, 2), (1, 2), (1, 2), (2, 3), (3, 2), (3, 2), (4, 3), (1, 4), (4, 1)],
    "star_out": [(10, i) for i in range(11, 20)] + [(11, 10), (12, 13)],
    "complete_mutual": [(a, b) for a in range(1, 6) for b in range(1, 6) if a != b],
    "every_closed_class": [
        (1, 2),
        (2, 3),
        (1, 3),  # 030T
        (4, 5),
        (5, 6),
        (6, 4),  # 030C
        (7, 8),
        (7, 9),
        (8, 9),
        (9, 8),  # 120D
        (10, 12),
        (11, 12),
        (10, 11),
        (11, 10),  # 120U
        (13, 14),
        (14, 15),
        (13, 15),
        (15, 13),  # 120C
        (16, 17),
        (17, 16),
        (17, 18),
        (18, 17),
        (16, 18),  # 210
    ],
}


def _random_events(seed: int, n: int, m: int) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    src = rng.integers(0, n, m)
    dst = (rng.pareto(1.5, m) * 3).astype(int) % n
    events = [(int(a), int(b)) for a, b in zip(src, dst, strict=True) if a != b]
    # Plant reciprocity and repeats so every motif class has a chance to appear.
    events += [(b, a) for a, b in events[: m // 4]] + events[: m // 10]
    return events


for _seed in range(3):
    GRAPHS[f"random_{_seed}"] = _random_events(_seed, 60, 400)
# Larger and hub-heavy: many triangles of every closed class.
GRAPHS["random_hubs"] = _random_events(7, 800, 6000)


def _both(events: list[tuple[int, int]]) -> tuple[core.FollowGraph, nx.DiGraph]:
    src, dst = zip(*events, strict=True)
    graph = core.build_graph(np.array(src), np.array(dst))
    return graph, nx.DiGraph(events)


def _close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_motif_counts_equal_networkx_triadic_census(name: str) -> None:
    graph, g = _both(GRAPHS[name])
    census = nx.triadic_census(g)
    ours = core.motif_counts(graph.n, graph.src, graph.dst)
    assert dict(zip(core.MOTIF_NAMES, ours.tolist(), strict=True)) == {
        k: census[k] for k in core.MOTIF_NAMES
    }


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_scalar_statistics_equal_networkx(name: str) -> None:
    graph, g = _both(GRAPHS[name])
    stats = core.graph_stats(graph.n, graph.src, graph.dst, randomizations=0)
    assert stats.nodes == g.number_of_nodes() and stats.edges == g.number_of_edges()
    assert _close(stats.clustering, nx.transitivity(g.to_undirected()))
    assert _close(stats.reciprocity, nx.reciprocity(g))
    for (x, y), ours in [
        (("out", "in"), stats.assortativity_out_in),
        (("in", "in"), stats.assortativity_in_in),
        (("out", "out"), stats.assortativity_out_out),
    ]:
        with np.errstate(all="ignore"):
            expected = nx.degree_assortativity_coefficient(g, x=x, y=y)
        assert _close(ours, expected), (x, y, ours, expected)


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_pagerank_degrees_and_multiplicity_equal_networkx(name: str) -> None:
    events = GRAPHS[name]
    graph, g = _both(events)
    users = core.user_stats(graph)
    expected_pr = nx.pagerank(g, alpha=0.85, tol=1e-12, max_iter=10_000)
    multi = nx.MultiDiGraph(events)
    for i, uid in enumerate(graph.ids.tolist()):
        assert users.pagerank[i] == pytest.approx(expected_pr[uid], abs=1e-8)
        assert users.in_degree[i] == g.in_degree(uid)
        assert users.out_degree[i] == g.out_degree(uid)
        per_target = [multi.number_of_edges(uid, v) for v in g.successors(uid)]
        assert users.max_follow_multiplicity[i] == max(per_target, default=0)
        assert users.repeated_follows[i] == sum(c - 1 for c in per_target)


def test_randomizations_preserve_degrees_and_give_z_scores() -> None:
    graph, _ = _both(GRAPHS["random_0"])
    rand = core.randomized_motifs(graph.n, graph.src, graph.dst, 5, 3.0, seed=1)
    assert rand.shape == (5, 13)
    again = core.randomized_motifs(graph.n, graph.src, graph.dst, 5, 3.0, seed=1)
    assert np.array_equal(rand, again)  # seeded: reproducible
    stats = core.graph_stats(graph.n, graph.src, graph.dst, randomizations=5, seed=1)
    z = core.z_scores(stats.motif_counts, rand)
    assert np.array_equal(np.isnan(z), np.isnan(stats.motif_z))
    assert np.allclose(z[~np.isnan(z)], stats.motif_z[~np.isnan(z)])
    assert (~np.isnan(z)).sum() >= 5


def test_z_scores_are_nan_where_randomizations_do_not_vary() -> None:
    observed = np.array([5, 3], dtype=np.int64)
    randomized = np.array([[1, 3], [3, 3]], dtype=np.int64)
    z = core.z_scores(observed, randomized)
    assert z[0] == pytest.approx((5 - 2) / np.std([1, 3], ddof=1))
    assert np.isnan(z[1])


def test_ego_network_within_hops() -> None:
    events = [(1, 2), (3, 2), (4, 3), (5, 4), (2, 6)]
    graph, g = _both(events)
    centre = int(np.searchsorted(graph.ids, 2))
    (members,) = core.ego_members(graph, [centre], hops=1)
    assert sorted(graph.ids[members].tolist()) == [1, 2, 3, 6]
    n, src, _dst = core.induced(graph.n, graph.src, graph.dst, members)
    assert (n, src.shape[0]) == (4, 3)
    ego = nx.ego_graph(g, 2, radius=2, undirected=True)
    (two,) = core.ego_members(graph, [centre], hops=2)
    assert sorted(graph.ids[two].tolist()) == sorted(ego.nodes)


def test_empty_and_isolated_graphs() -> None:
    graph = core.build_graph(np.array([7]), np.array([7]), extra_ids=np.array([9]))
    assert graph.ids.tolist() == [9] and graph.m == 0  # the self follow is dropped
    stats = core.graph_stats(graph.n, graph.src, graph.dst, randomizations=3)
    assert stats.edges == 0 and stats.clustering == 0.0
    assert math.isnan(stats.reciprocity) and math.isnan(stats.assortativity_out_in)
    assert stats.motif_counts.tolist() == [0] * 13
    users = core.user_stats(graph)
    assert users.pagerank.tolist() == pytest.approx([1.0])


def test_blocked_products_give_the_same_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    graph, g = _both(GRAPHS["random_hubs"])
    whole = core.motif_counts(graph.n, graph.src, graph.dst)
    monkeypatch.setattr(core, "_BLOCK_WORK", 50)  # many small row blocks
    blocked = core.motif_counts(graph.n, graph.src, graph.dst)
    census = nx.triadic_census(g)
    assert blocked.tolist() == whole.tolist() == [census[k] for k in core.MOTIF_NAMES]


def test_multi_edge_dyads_tell_repeated_follows_apart() -> None:
    # 1->2 once; 3->4 three times; 5<->6 once each; 7<->8 with 7->8 twice; 9<->10 twice each
    src = [1, 3, 3, 3, 5, 6, 7, 7, 8, 9, 9, 10, 10]
    dst = [2, 4, 4, 4, 6, 5, 8, 8, 7, 10, 10, 9, 9]
    graph = core.build_graph(np.array(src), np.array(dst))
    assert core.multi_edge_dyads(graph) == {
        "asymmetric_single": 1,
        "asymmetric_repeated": 1,
        "mutual_single": 1,
        "mutual_one_repeated": 1,
        "mutual_both_repeated": 1,
    }
    empty = core.build_graph(np.zeros(0, np.int64), np.zeros(0, np.int64))
    assert set(core.multi_edge_dyads(empty).values()) == {0}
