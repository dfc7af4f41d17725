"""Network statistics of the follow graph: pure functions over numpy arrays.

The graph is held as compact arrays (:class:`FollowGraph`): vertex ``i`` is user
``ids[i]``; each distinct follow pair ``src[j] -> dst[j]`` appears once with the number
of follow *events* between them in ``multiplicity[j]`` (follow-churn bots follow the
same target again and again, so multiplicity is data, not noise). Statistics are
computed on the simple directed graph (distinct pairs, no self loops), which is what
networkx's ``DiGraph`` of the same events is, so values match networkx's.

Motifs: the 13 connected three-node directed motifs are the 13 connected classes of
the triad census (all but 003, 012 and 102). Instead of a census over all triples we
count them from two ingredients, both near-linear in practice:

* open triads (021D, 021U, 021C, 111D, 111U, 201) from per-vertex counts of asymmetric
  out-, asymmetric in- and mutual neighbours: every pair of neighbours of a centre is
  one triple of a known class, minus the triples that are closed (triangles);
* closed triads (030T, 030C, 120D, 120U, 120C, 210, 300) by classifying each triangle
  of the undirected simple graph (igraph lists them in C) by its edge directions.

Z-scores compare the counts with degree-preserving randomizations (igraph's
``rewire``, which keeps every vertex's in- and out-degree and the graph simple).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import igraph as ig
import numpy as np
import numpy.typing as npt

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

# The 13 connected triad classes, in the standard (Batagelj-Mrvar / networkx) order.
MOTIF_NAMES: tuple[str, ...] = (
    "021D",
    "021U",
    "021C",
    "111D",
    "111U",
    "030T",
    "030C",
    "201",
    "120D",
    "120U",
    "120C",
    "210",
    "300",
)
_M = {name: i for i, name in enumerate(MOTIF_NAMES)}

# Relation of a vertex to a neighbour: it follows them only, is followed only, or both.
_OUT, _IN, _MUT = 0, 1, 2
# Kinds of neighbour pairs seen from their centre vertex (unordered pair of relations).
_OO, _II, _IO, _MI, _MO, _MM = 0, 1, 2, 3, 4, 5
_PAIR_KIND = np.array(
    [
        [_OO, _IO, _MO],
        [_IO, _II, _MI],
        [_MO, _MI, _MM],
    ],
    dtype=np.int64,
)
# Open triad class of each pair kind: 021D = A<-B->C (centre follows both), 021U = the
# reverse, 021C = a path, 111D = A<->B<-C, 111U = A<->B->C, 201 = A<->B<->C.
_OPEN_CLASS = (_M["021D"], _M["021U"], _M["021C"], _M["111D"], _M["111U"], _M["201"])


@dataclass(frozen=True)
class FollowGraph:
    """Compact follow graph: vertex ids, distinct pairs and their event multiplicity."""

    ids: I64
    src: I32
    dst: I32
    multiplicity: I32

    @property
    def n(self) -> int:
        """Number of vertices."""
        return int(self.ids.shape[0])

    @property
    def m(self) -> int:
        """Number of distinct directed follow pairs."""
        return int(self.src.shape[0])


@dataclass(frozen=True)
class GraphStats:
    """Whole-graph figures of one scope (the global graph or one ego network)."""

    nodes: int
    edges: int
    clustering: float
    assortativity_out_in: float
    assortativity_in_in: float
    assortativity_out_out: float
    reciprocity: float
    motif_counts: I64
    motif_z: F64


@dataclass(frozen=True)
class UserStats:
    """Per-vertex figures, aligned with :attr:`FollowGraph.ids`."""

    pagerank: F64
    in_degree: I64
    out_degree: I64
    max_follow_multiplicity: I64
    repeated_follows: I64


def build_graph(
    follower_ids: npt.ArrayLike,
    followee_ids: npt.ArrayLike,
    multiplicity: npt.ArrayLike | None = None,
    extra_ids: npt.ArrayLike | None = None,
) -> FollowGraph:
    """A :class:`FollowGraph` from follow events (or pairs with a multiplicity).

    Rows of the same pair are merged and their multiplicities summed; self follows are
    dropped. ``extra_ids`` adds vertices without any follow (an artist nobody follows).
    """
    src_ids = np.asarray(follower_ids, dtype=np.int64)
    dst_ids = np.asarray(followee_ids, dtype=np.int64)
    if src_ids.shape != dst_ids.shape:
        raise ValueError("follower and followee arrays differ in length")
    mult = (
        np.ones(src_ids.shape, dtype=np.int64)
        if multiplicity is None
        else np.asarray(multiplicity, dtype=np.int64)
    )
    keep = src_ids != dst_ids
    src_ids, dst_ids, mult = src_ids[keep], dst_ids[keep], mult[keep]
    parts = [src_ids, dst_ids]
    if extra_ids is not None:
        parts.append(np.asarray(extra_ids, dtype=np.int64))
    ids = np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)
    n = ids.shape[0]
    src = np.searchsorted(ids, src_ids)
    dst = np.searchsorted(ids, dst_ids)
    key = src.astype(np.int64) * max(n, 1) + dst
    pairs, inverse = np.unique(key, return_inverse=True)
    counts = np.bincount(inverse, weights=mult, minlength=pairs.shape[0]).astype(np.int32)
    return FollowGraph(
        ids=ids,
        src=(pairs // max(n, 1)).astype(np.int32),
        dst=(pairs % max(n, 1)).astype(np.int32),
        multiplicity=counts,
    )


def _mutual_mask(n: int, src: I32, dst: I32) -> npt.NDArray[np.bool_]:
    """For each pair, whether the reverse pair exists too."""
    key = src.astype(np.int64) * n + dst
    order = np.sort(key)
    rev = dst.astype(np.int64) * n + src
    pos = np.searchsorted(order, rev)
    pos[pos == order.shape[0]] = 0
    return order[pos] == rev if order.shape[0] else np.zeros(0, dtype=bool)


def reciprocity(n: int, src: I32, dst: I32) -> float:
    """Share of follow pairs whose reverse pair exists (networkx's ``reciprocity``)."""
    if src.shape[0] == 0:
        return float("nan")
    return float(_mutual_mask(n, src, dst).mean())


def _pearson(x: F64, y: F64) -> float:
    if x.shape[0] < 2:
        return float("nan")
    dx, dy = x - x.mean(), y - y.mean()
    denom = float(np.sqrt((dx * dx).sum() * (dy * dy).sum()))
    if denom == 0.0:
        return float("nan")
    return float((dx * dy).sum() / denom)


def assortativity(n: int, src: I32, dst: I32) -> tuple[float, float, float]:
    """Degree assortativity out->in, in->in and out->out (source's x, target's y degree).

    Pearson correlation over edges, as networkx's ``degree_assortativity_coefficient``
    with ``x``/``y`` set; NaN when a degree sequence is constant.
    """
    outdeg = np.bincount(src, minlength=n).astype(np.float64)
    indeg = np.bincount(dst, minlength=n).astype(np.float64)
    return (
        _pearson(outdeg[src], indeg[dst]),
        _pearson(indeg[src], indeg[dst]),
        _pearson(outdeg[src], outdeg[dst]),
    )


@dataclass(frozen=True)
class _Undirected:
    a: I64
    b: I64
    rel: I64  # relation of a to b (a < b): _OUT, _IN or _MUT
    mutual: npt.NDArray[np.bool_]  # per directed pair


def _undirected(n: int, src: I32, dst: I32) -> _Undirected:
    mutual = _mutual_mask(n, src, dst)
    s, d = src.astype(np.int64), dst.astype(np.int64)
    # One row per unordered pair: asymmetric pairs once, mutual pairs from src < dst.
    keep = ~mutual | (s < d)
    s, d, mut = s[keep], d[keep], mutual[keep]
    a, b = np.minimum(s, d), np.maximum(s, d)
    rel = np.where(mut, _MUT, np.where(s < d, _OUT, _IN)).astype(np.int64)
    return _Undirected(a=a, b=b, rel=rel, mutual=mutual)


def _triangles(n: int, a: I64, b: I64) -> I64:
    """Every triangle of the undirected simple graph as a (k, 3) array of vertices."""
    if a.shape[0] < 3:
        return np.empty((0, 3), dtype=np.int64)
    graph = ig.Graph(n=n, edges=np.column_stack([a, b]).tolist(), directed=False)
    tri = graph.list_triangles()
    return np.asarray(tri, dtype=np.int64).reshape(-1, 3)


def _relations(n: int, und: _Undirected, x: I64, y: I64) -> I64:
    """Relation of x to y for pairs known to be adjacent."""
    key = und.a * n + und.b
    order = np.argsort(key)
    lo, hi = np.minimum(x, y), np.maximum(x, y)
    pos = order[np.searchsorted(key[order], lo * n + hi)]
    rel = und.rel[pos]
    # Stored relations are from the smaller vertex's side: swap out/in for the other.
    flipped = np.where(rel == _OUT, _IN, np.where(rel == _IN, _OUT, _MUT))
    return np.where(x < y, rel, flipped)


@dataclass(frozen=True)
class _Census:
    motifs: I64
    triangles: int
    connected_triples: int


def _census(n: int, src: I32, dst: I32) -> _Census:
    motifs = np.zeros(len(MOTIF_NAMES), dtype=np.int64)
    if src.shape[0] == 0:
        return _Census(motifs, 0, 0)
    und = _undirected(n, src, dst)
    asym = ~und.mutual
    a_out = np.bincount(src[asym], minlength=n).astype(np.int64)
    a_in = np.bincount(dst[asym], minlength=n).astype(np.int64)
    mut = np.bincount(src[und.mutual], minlength=n).astype(np.int64)
    # Neighbour pairs by kind, summed over centres (each is one connected triple).
    pair_totals = np.array(
        [
            (a_out * (a_out - 1) // 2).sum(),
            (a_in * (a_in - 1) // 2).sum(),
            (a_out * a_in).sum(),
            (mut * a_in).sum(),
            (mut * a_out).sum(),
            (mut * (mut - 1) // 2).sum(),
        ],
        dtype=np.int64,
    )
    degree = a_out + a_in + mut
    connected_triples = int((degree * (degree - 1) // 2).sum())

    tri = _triangles(n, und.a, und.b)
    x, y, z = tri[:, 0], tri[:, 1], tri[:, 2]
    rxy, rxz = _relations(n, und, x, y), _relations(n, und, x, z)
    ryz = _relations(n, und, y, z)
    ryx = np.where(rxy == _MUT, _MUT, 1 - np.minimum(rxy, 1))
    rzx = np.where(rxz == _MUT, _MUT, 1 - np.minimum(rxz, 1))
    rzy = np.where(ryz == _MUT, _MUT, 1 - np.minimum(ryz, 1))
    corners = np.stack([_PAIR_KIND[rxy, rxz], _PAIR_KIND[ryx, ryz], _PAIR_KIND[rzx, rzy]], axis=1)
    # Triples that are closed are not open triads: remove them from the pair totals.
    closed_pairs = np.bincount(corners.ravel(), minlength=6).astype(np.int64)
    for kind, cls in enumerate(_OPEN_CLASS):
        motifs[cls] = pair_totals[kind] - closed_pairs[kind]

    n_mut = (rxy == _MUT).astype(np.int64) + (rxz == _MUT).astype(np.int64)
    n_mut += (ryz == _MUT).astype(np.int64)
    # Acyclic vs cyclic without mutual edges: a 3-cycle has one out-edge at every corner.
    # (numpy adds booleans as a logical or: count in integers.)
    x_outs = (rxy == _OUT).astype(np.int64) + (rxz == _OUT).astype(np.int64)
    y_outs = (ryx == _OUT).astype(np.int64) + (ryz == _OUT).astype(np.int64)
    cyclic = (x_outs == 1) & (y_outs == 1)
    none = n_mut == 0
    motifs[_M["030C"]] = int((none & cyclic).sum())
    motifs[_M["030T"]] = int((none & ~cyclic).sum())
    # One mutual edge: the corner off it has two asymmetric edges; their directions
    # (both out, both in, one each) make 120D, 120U or 120C.
    one = n_mut == 1
    off = np.where(corners[one] <= _IO, corners[one], 99).min(axis=1)
    motifs[_M["120D"]] = int((off == _OO).sum())
    motifs[_M["120U"]] = int((off == _II).sum())
    motifs[_M["120C"]] = int((off == _IO).sum())
    motifs[_M["210"]] = int((n_mut == 2).sum())
    motifs[_M["300"]] = int((n_mut == 3).sum())
    return _Census(motifs, int(tri.shape[0]), connected_triples)


def motif_counts(n: int, src: I32, dst: I32) -> I64:
    """Counts of the 13 connected three-node motifs (order: :data:`MOTIF_NAMES`)."""
    return _census(n, src, dst).motifs


def transitivity(n: int, src: I32, dst: I32) -> float:
    """Global clustering: 3 x triangles / connected triples of the undirected simple graph.

    0.0 when there is no connected triple, as networkx's ``transitivity``.
    """
    census = _census(n, src, dst)
    if census.connected_triples == 0:
        return 0.0
    return 3.0 * census.triangles / census.connected_triples


def randomized_motifs(
    n: int, src: I32, dst: I32, randomizations: int, swaps_per_edge: float, seed: int
) -> I64:
    """Motif counts of ``randomizations`` degree-preserving rewirings, shape (r, 13)."""
    out = np.zeros((randomizations, len(MOTIF_NAMES)), dtype=np.int64)
    if src.shape[0] < 2 or randomizations == 0:
        out[:] = motif_counts(n, src, dst)
        return out
    # igraph draws from Python's random module: a private seeded generator makes runs
    # reproducible without touching the process-wide state.
    previous = ig.set_random_number_generator(random.Random(seed))
    try:
        edges = np.column_stack([src, dst]).tolist()
        for i in range(randomizations):
            graph = ig.Graph(n=n, edges=edges, directed=True)
            graph.rewire(n=max(1, int(swaps_per_edge * src.shape[0])), allowed_edge_types="simple")
            pairs = np.asarray(graph.get_edgelist(), dtype=np.int32).reshape(-1, 2)
            out[i] = motif_counts(n, pairs[:, 0], pairs[:, 1])
    finally:
        ig.set_random_number_generator(previous if previous is not None else random)
    return out


def z_scores(observed: I64, randomized: I64) -> F64:
    """(observed - mean) / std of the randomized counts; NaN where the std is zero."""
    mean = randomized.mean(axis=0)
    std = randomized.std(axis=0, ddof=1) if randomized.shape[0] > 1 else np.zeros_like(mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (observed - mean) / std
    return np.where(std > 0, z, np.nan)


def graph_stats(
    n: int,
    src: I32,
    dst: I32,
    *,
    randomizations: int = 10,
    swaps_per_edge: float = 3.0,
    seed: int = 0,
) -> GraphStats:
    """All whole-graph figures of the simple directed graph ``src -> dst`` on ``n`` vertices."""
    census = _census(n, src, dst)
    clustering = (
        3.0 * census.triangles / census.connected_triples if census.connected_triples else 0.0
    )
    out_in, in_in, out_out = assortativity(n, src, dst)
    if randomizations > 0:
        rand = randomized_motifs(n, src, dst, randomizations, swaps_per_edge, seed)
        z = z_scores(census.motifs, rand)
    else:
        z = np.full(len(MOTIF_NAMES), np.nan)
    return GraphStats(
        nodes=n,
        edges=int(src.shape[0]),
        clustering=clustering,
        assortativity_out_in=out_in,
        assortativity_in_in=in_in,
        assortativity_out_out=out_out,
        reciprocity=reciprocity(n, src, dst),
        motif_counts=census.motifs,
        motif_z=z,
    )


def pagerank(n: int, src: I32, dst: I32, damping: float = 0.85) -> F64:
    """PageRank of the simple directed graph (dangling mass spread uniformly, as networkx)."""
    if n == 0:
        return np.zeros(0)
    graph = ig.Graph(n=n, edges=np.column_stack([src, dst]).tolist(), directed=True)
    return np.asarray(graph.pagerank(damping=damping, directed=True), dtype=np.float64)


def user_stats(graph: FollowGraph, damping: float = 0.85) -> UserStats:
    """PageRank, degrees and follow multiplicity per user.

    Multiplicity is counted on the follower's side: ``max_follow_multiplicity`` is the
    most events this user made towards one target, ``repeated_follows`` the events
    beyond the first summed over targets (the signature of follow-churn bots).
    """
    n = graph.n
    mult = graph.multiplicity.astype(np.int64)
    max_mult = np.zeros(n, dtype=np.int64)
    np.maximum.at(max_mult, graph.src, mult)
    repeated = np.bincount(graph.src, weights=mult - 1, minlength=n).astype(np.int64)
    return UserStats(
        pagerank=pagerank(n, graph.src, graph.dst, damping),
        in_degree=np.bincount(graph.dst, minlength=n).astype(np.int64),
        out_degree=np.bincount(graph.src, minlength=n).astype(np.int64),
        max_follow_multiplicity=max_mult,
        repeated_follows=repeated,
    )


def ego_members(graph: FollowGraph, centers: npt.ArrayLike, hops: int) -> list[I64]:
    """For each centre vertex, the vertices within ``hops`` undirected hops (centre included)."""
    adjacency = ig.Graph(
        n=graph.n, edges=np.column_stack([graph.src, graph.dst]).tolist(), directed=True
    )
    centres = [int(c) for c in np.asarray(centers, dtype=np.int64)]
    found = adjacency.neighborhood(centres, order=hops, mode="all")
    return [np.asarray(members, dtype=np.int64) for members in found]


def induced(n: int, src: I32, dst: I32, members: I64) -> tuple[int, I32, I32]:
    """The subgraph induced by ``members``, renumbered 0..len(members)-1."""
    inside = np.zeros(n, dtype=bool)
    inside[members] = True
    keep = inside[src] & inside[dst]
    new_index = np.full(n, -1, dtype=np.int64)
    members_sorted = np.sort(members)
    new_index[members_sorted] = np.arange(members_sorted.shape[0])
    return (
        int(members_sorted.shape[0]),
        new_index[src[keep]].astype(np.int32),
        new_index[dst[keep]].astype(np.int32),
    )
