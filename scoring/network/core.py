"""Network statistics of the follow graph: pure functions over numpy arrays.

The graph is held as compact arrays (:class:`FollowGraph`): vertex ``i`` is user
``ids[i]``; each distinct follow pair ``src[j] -> dst[j]`` appears once with the number
of follow *events* between them in ``multiplicity[j]`` (follow-churn bots follow the
same target again and again, so multiplicity is data, not noise). Statistics are
computed on the simple directed graph (distinct pairs, no self loops), which is what
networkx's ``DiGraph`` of the same events is, so values match networkx's.

Motifs: the 13 connected three-node directed motifs are the 13 connected classes of
the triad census (all but 003, 012 and 102). Instead of a census over all triples we
count them from two ingredients:

* closed triads (030T, 030C, 120D, 120U, 120C, 210, 300) from masked sparse products
  of the asymmetric and the mutual adjacency matrices (``sum(A o A@A)`` and the like),
  computed in row blocks of bounded work so memory stays bounded on hub-heavy graphs
  and no triangle list is ever materialized;
* open triads (021D, 021U, 021C, 111D, 111U, 201) from per-vertex counts of asymmetric
  out-, asymmetric in- and mutual neighbours: every pair of neighbours of a centre is
  one triple of a known class, minus the closed triads' corners of that class.

Z-scores compare the counts with degree-preserving randomizations (igraph's
``rewire``, which keeps every vertex's in- and out-degree and the graph simple).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import igraph as ig
import numpy as np
import numpy.typing as npt
from scipy import sparse

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


# Corner kinds of each closed class (which neighbour pairs its three corners are):
# every closed triad is also counted once per corner in the pair totals, so these are
# subtracted to leave the open triads.
_CLOSED_CORNERS: dict[str, tuple[int, ...]] = {
    "030T": (_OO, _IO, _II),  # source, middle, sink
    "030C": (_IO, _IO, _IO),
    "120D": (_OO, _MI, _MI),  # B->A, B->C, A<->C
    "120U": (_II, _MO, _MO),  # A->B, C->B, A<->C
    "120C": (_IO, _MO, _MI),  # A->B->C, A<->C
    "210": (_MM, _MO, _MI),  # A<->B<->C, A->C
    "300": (_MM, _MM, _MM),
}

# Work (non-zeros touched) per block of rows in the masked sparse products: bounds the
# memory of the intermediate product whatever the graph's size or hubs.
_BLOCK_WORK = 5_000_000


def _masked_sums(
    left: sparse.csr_matrix,
    right: sparse.csr_matrix,
    masks: Sequence[sparse.csr_matrix],
) -> list[int]:
    """``sum((left @ right) * mask)`` for each mask, computed in row blocks."""
    right_len = np.diff(right.indptr).astype(np.int64)
    work = left @ right_len  # per row: entries of the product row before merging
    bounds = [0]
    acc = 0
    for row, w in enumerate(work.tolist()):
        acc += int(w)
        if acc >= _BLOCK_WORK:
            bounds.append(row + 1)
            acc = 0
    if bounds[-1] != left.shape[0]:
        bounds.append(left.shape[0])
    totals = [0] * len(masks)
    for r0, r1 in itertools.pairwise(bounds):
        block = left[r0:r1] @ right
        for i, mask in enumerate(masks):
            totals[i] += int(block.multiply(mask[r0:r1]).sum())
    return totals


def _adjacency(n: int, src: npt.NDArray[np.integer], dst: npt.NDArray[np.integer]) -> Any:
    data = np.ones(src.shape[0], dtype=np.int64)
    return sparse.csr_matrix((data, (src, dst)), shape=(n, n))


def _closed_triads(n: int, src: I32, dst: I32, mutual: npt.NDArray[np.bool_]) -> dict[str, int]:
    """Counts of the seven closed classes from masked products of A (asym) and M (mutual).

    With A[u, v] = 1 for an asymmetric follow u->v and M the symmetric mutual matrix:
    030T = sum(A o A@A), 030C = sum(A^T o A@A) / 3, 120C = sum(M o A@A),
    120D = sum(A o A@M) / 2, 120U = sum(A o M@A) / 2, 210 = sum(A o M@M),
    300 = sum(M o M@M) / 6.
    """
    asym = ~mutual
    a = _adjacency(n, src[asym], dst[asym])
    m = _adjacency(n, src[mutual], dst[mutual])
    at = a.T.tocsr()
    t030, c030x3, c120 = _masked_sums(a, a, [a, at, m])
    # 120D/120U through the mutual matrix (A@M, M@A) rather than A^T@A and A@A^T: the
    # latter cost the sum of squared in-degrees, which explodes on popular accounts.
    (d120x2,) = _masked_sums(a, m, [a])
    (u120x2,) = _masked_sums(m, a, [a])
    t210, t300x6 = _masked_sums(m, m, [a, m])
    return {
        "030T": t030,
        "030C": c030x3 // 3,
        "120D": d120x2 // 2,
        "120U": u120x2 // 2,
        "120C": c120,
        "210": t210,
        "300": t300x6 // 6,
    }


@dataclass(frozen=True)
class _Census:
    motifs: I64
    triangles: int
    connected_triples: int


def _census(n: int, src: I32, dst: I32) -> _Census:
    motifs = np.zeros(len(MOTIF_NAMES), dtype=np.int64)
    if src.shape[0] == 0:
        return _Census(motifs, 0, 0)
    mutual = _mutual_mask(n, src, dst)
    asym = ~mutual
    a_out = np.bincount(src[asym], minlength=n).astype(np.int64)
    a_in = np.bincount(dst[asym], minlength=n).astype(np.int64)
    mut = np.bincount(src[mutual], minlength=n).astype(np.int64)
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
    closed = _closed_triads(n, src, dst, mutual)
    closed_pairs = np.zeros(6, dtype=np.int64)
    for name, count in closed.items():
        motifs[_M[name]] = count
        for kind in _CLOSED_CORNERS[name]:
            closed_pairs[kind] += count
    for kind, cls in enumerate(_OPEN_CLASS):
        motifs[cls] = pair_totals[kind] - closed_pairs[kind]
    return _Census(motifs, int(sum(closed.values())), connected_triples)


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


def pagerank(
    n: int, src: I32, dst: I32, damping: float = 0.85, tol: float = 1e-12, max_iter: int = 1000
) -> F64:
    """PageRank of the simple directed graph, as networkx's ``pagerank``.

    Power iteration over the edge arrays (no graph object: memory is a few vectors);
    the rank of dangling vertices (no out-edge) is spread uniformly, as networkx does.
    Stops when the L1 change is below ``n * tol``.
    """
    if n == 0:
        return np.zeros(0)
    outdeg = np.bincount(src, minlength=n).astype(np.float64)
    dangling = outdeg == 0
    transition = sparse.csr_matrix(
        (1.0 / outdeg[src], (dst, src)), shape=(n, n)
    )  # column-stochastic over non-dangling sources
    x = np.full(n, 1.0 / n)
    for _ in range(max_iter):
        previous = x
        x = damping * (transition @ x + x[dangling].sum() / n) + (1.0 - damping) / n
        if np.abs(x - previous).sum() < n * tol:
            break
    return np.asarray(x / x.sum(), dtype=np.float64)


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


MULTI_EDGE_DYADS: tuple[str, ...] = (
    "asymmetric_single",
    "asymmetric_repeated",
    "mutual_single",
    "mutual_one_repeated",
    "mutual_both_repeated",
)


def multi_edge_dyads(graph: FollowGraph) -> dict[str, int]:
    """The dyad census with multiplicity: two-node motifs that tell repeated follows apart.

    A pair followed one way is ``asymmetric_*``, both ways ``mutual_*`` (counted once per
    pair); ``repeated`` means two or more follow events on that side. Follow-churn bots
    show up as ``asymmetric_repeated`` dyads (the Going Viral finding: multi-edges, not
    triads, are where churn is visible).
    """
    if graph.m == 0:
        return dict.fromkeys(MULTI_EDGE_DYADS, 0)
    n = graph.n
    key = graph.src.astype(np.int64) * n + graph.dst
    order = np.argsort(key)
    rev = graph.dst.astype(np.int64) * n + graph.src
    pos = np.minimum(np.searchsorted(key[order], rev), key.size - 1)
    mutual = key[order][pos] == rev
    repeated = graph.multiplicity >= 2
    back_repeated = repeated[order[pos]] & mutual
    first = graph.src < graph.dst  # each mutual pair once
    both = mutual & first
    return {
        "asymmetric_single": int((~mutual & ~repeated).sum()),
        "asymmetric_repeated": int((~mutual & repeated).sum()),
        "mutual_single": int((both & ~repeated & ~back_repeated).sum()),
        "mutual_one_repeated": int((both & (repeated ^ back_repeated)).sum()),
        "mutual_both_repeated": int((both & repeated & back_repeated).sum()),
    }


def ego_members(graph: FollowGraph, centers: npt.ArrayLike, hops: int) -> list[I64]:
    """For each centre vertex, the vertices within ``hops`` undirected hops (centre included).

    Breadth-first over a symmetric CSR adjacency: memory is the adjacency plus one
    visited mask, whatever the graph's size.
    """
    both_src = np.concatenate([graph.src, graph.dst])
    both_dst = np.concatenate([graph.dst, graph.src])
    adjacency = _adjacency(graph.n, both_src, both_dst)
    indptr, indices = adjacency.indptr, adjacency.indices
    out = []
    for centre in np.asarray(centers, dtype=np.int64).tolist():
        seen = np.zeros(graph.n, dtype=bool)
        seen[centre] = True
        frontier = np.array([centre], dtype=np.int64)
        for _ in range(hops):
            if frontier.shape[0] == 0:
                break
            starts, ends = indptr[frontier], indptr[frontier + 1]
            lengths = ends - starts
            # Every neighbour of the frontier, gathered without a Python loop.
            offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
            neighbours = indices[np.arange(int(lengths.sum())) + offsets]
            frontier = np.unique(neighbours[~seen[neighbours]])
            seen[frontier] = True
        out.append(np.flatnonzero(seen).astype(np.int64))
    return out


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
