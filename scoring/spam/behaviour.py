"""Behavioural spam features from what a crawl holds: follow events and sign-up times.

Pure numpy/scipy: arrays in, per-user columns out (aligned with ``user_ids``, sorted
ascending). Every feature is about what an account does, not what it says:

- ``reciprocity``: share of the accounts it follows that follow it back;
- ``followers_followed``: share of its followers it follows itself (an account whose
  only followers are follow-backs scores 1);
- ``organic_followers``: followers it does not follow itself, attention it earned
  rather than traded for;
- ``follow_multiplicity`` / ``repeated_targets``: the most follow events to one target,
  and how many targets it followed more than once (follow churn shows as multi-edges);
- ``follow_burst``: the most follow events it made within any 72 hours;
- ``early_follows``: the share of its follows made within 72 hours of its sign-up;
- ``signup_burst``: how many other crawled accounts signed up within ten minutes of it;
- ``lockstep``: how many of the accounts that signed up closest to it follow nearly the
  same accounts (fake-follower batches follow the same customers; CopyCatch and
  SynchroTrap look for exactly this lockstep);
- ``trust``: TrustRank (a SybilRank-style propagation along follow edges from seed
  accounts, damped, degree-normalised), where seeds are chosen without labels: the
  most-followed accounts that publish tracks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

BURST_S = 72 * 3600
SIGNUP_WINDOW_S = 600
LOCKSTEP_NEIGHBOURS = 30
LOCKSTEP_JACCARD = 0.5


@dataclass
class FollowEvents:
    """Follow events as crawled: follower, followee, event time (epoch s; NaN unknown).

    Repeated follows of one pair are separate events (different times).
    """

    follower: I64
    followee: I64
    t_s: F64

    def __len__(self) -> int:
        return int(self.follower.shape[0])


BEHAVIOUR_FEATURES: tuple[str, ...] = (
    "reciprocity",
    "followers_followed",
    "organic_followers",
    "follow_multiplicity",
    "repeated_targets",
    "follow_burst",
    "early_follows",
    "signup_burst",
    "lockstep",
    "trust",
)


def _index(user_ids: I64, ids: I64) -> tuple[I64, npt.NDArray[np.bool_]]:
    """Positions of ``ids`` in the sorted ``user_ids`` and whether each is there."""
    n = user_ids.shape[0]
    pos = np.searchsorted(user_ids, ids)
    pos[pos >= n] = 0
    known = user_ids[pos] == ids if n else np.zeros(ids.shape[0], dtype=bool)
    return pos.astype(np.int64), known


def signup_burst(created_s: F64, window_s: float = SIGNUP_WINDOW_S) -> F64:
    """For each account, how many others signed up within ``window_s`` of it."""
    out = np.zeros(created_s.shape[0])
    ok = np.isfinite(created_s)
    t = created_s[ok]
    if t.size == 0:
        return out
    order = np.argsort(t, kind="stable")
    ts = t[order]
    lo = np.searchsorted(ts, ts - window_s, side="left")
    hi = np.searchsorted(ts, ts + window_s, side="right")
    counts = np.empty(t.size)
    counts[order] = hi - lo - 1
    out[ok] = counts
    return out


def _max_in_window(group: I64, t: F64, n: int, window: float) -> F64:
    """Per group, the most events within any ``window`` (events sorted by group, time)."""
    out = np.zeros(n)
    if group.size == 0:
        return out
    # position of the first event of each event's group, and of the first event of the
    # same group no older than ``window`` before it
    # one sortable key: groups laid end to end, each a window wider than all of time
    rel = t - t.min()
    key = group.astype(np.float64) * (rel.max() + 2 * window) + rel
    start = np.searchsorted(key, key - window, side="left")
    np.maximum.at(out, group, np.arange(group.size) - start + 1)
    return out


def _lockstep(user: I64, target: I64, created_s: F64, neighbours: int) -> F64:
    """How many of the ``neighbours`` closest sign-ups follow nearly the same accounts.

    Nearly the same: followee sets with a Jaccard overlap of at least
    :data:`LOCKSTEP_JACCARD`. A count, not the best overlap: two people who follow only
    the same superstar overlap fully, a batch of bought accounts does so many times.
    ``user`` (index) follows ``target`` (any id, crawled or not), once per event.
    """
    n = created_s.shape[0]
    out = np.zeros(n)
    codes = np.unique(target, return_inverse=True)[1].ravel()
    follows = sp.csr_matrix(
        (np.ones(user.size), (user, codes)), shape=(n, int(codes.max(initial=-1)) + 1)
    )
    follows.sum_duplicates()
    follows.data[:] = 1.0
    out_deg = np.asarray(follows.sum(axis=1)).ravel()
    has = np.flatnonzero((out_deg > 0) & np.isfinite(created_s))
    if has.size < 2:
        return out
    order = has[np.argsort(created_s[has], kind="stable")]
    rows = follows[order]
    size = np.asarray(rows.sum(axis=1)).ravel()
    for shift in range(1, min(neighbours, order.size - 1) + 1):
        inter = np.asarray(rows[:-shift].multiply(rows[shift:]).sum(axis=1)).ravel()
        alike = (inter / (size[:-shift] + size[shift:] - inter) >= LOCKSTEP_JACCARD).astype(float)
        np.add.at(out, order[:-shift], alike)
        np.add.at(out, order[shift:], alike)
    return out


def trust_rank(
    adjacency: sp.csr_matrix,
    seeds: npt.NDArray[np.bool_],
    damping: float = 0.85,
    iterations: int = 40,
) -> F64:
    """TrustRank: trust flows from a follower to whom it follows, split by out-degree,
    and teleports back to the seeds; returned scaled so that the mean is 1."""
    n = adjacency.shape[0]
    if n == 0 or not seeds.any():
        return np.zeros(n)
    out_deg = np.asarray(adjacency.sum(axis=1)).ravel()
    inv = np.divide(1.0, out_deg, out=np.zeros(n), where=out_deg > 0)
    flow = (sp.diags(inv) @ adjacency).T.tocsr()
    teleport = seeds / seeds.sum()
    trust = teleport.copy()
    for _ in range(iterations):
        trust = (1 - damping) * teleport + damping * (flow @ trust)
    return np.asarray(trust * n, dtype=np.float64)


def trust_seeds(followers: F64, tracks: F64, share: float = 0.005) -> npt.NDArray[np.bool_]:
    """Seeds without labels: the most-followed ``share`` of accounts that publish tracks."""
    publishing = np.nan_to_num(tracks) > 0
    k = max(1, round(share * followers.shape[0]))
    score = np.where(publishing, np.nan_to_num(followers), -1.0)
    top = np.argsort(-score, kind="stable")[:k]
    seeds = np.zeros(followers.shape[0], dtype=bool)
    seeds[top[score[top] >= 0]] = True
    return seeds


def behaviour_features(
    user_ids: I64,
    created_s: F64,
    followers: F64,
    tracks: F64,
    events: FollowEvents,
    *,
    lockstep_neighbours: int = LOCKSTEP_NEIGHBOURS,
) -> dict[str, F64]:
    """Every column of :data:`BEHAVIOUR_FEATURES` for ``user_ids`` (sorted ascending).

    Follow events with an end outside ``user_ids`` count for the known end only;
    events without a time count everywhere but in the two timing features.
    """
    n = user_ids.shape[0]
    src, src_ok = _index(user_ids, events.follower)
    dst, dst_ok = _index(user_ids, events.followee)
    both = src_ok & dst_ok

    adjacency = sp.csr_matrix((np.ones(int(both.sum())), (src[both], dst[both])), shape=(n, n))
    adjacency.sum_duplicates()
    adjacency.data[:] = 1.0
    out_deg = np.asarray(adjacency.sum(axis=1)).ravel()
    in_deg = np.asarray(adjacency.sum(axis=0)).ravel()
    n_mutual = np.asarray(adjacency.multiply(adjacency.T).sum(axis=1)).ravel()

    # What a user does is known from its own follow events, crawled target or not.
    s, target, t = src[src_ok], events.followee[src_ok], events.t_s[src_ok]
    _, pair_of, per_pair = np.unique(
        np.column_stack([s, target]), axis=0, return_inverse=True, return_counts=True
    )
    pair_user = np.zeros(per_pair.size, dtype=np.int64)
    pair_user[pair_of.ravel()] = s
    max_mult = np.zeros(n)
    repeated = np.zeros(n)
    np.maximum.at(max_mult, pair_user, per_pair.astype(np.float64))
    np.add.at(repeated, pair_user, (per_pair >= 2).astype(np.float64))

    timed = np.isfinite(t)
    ts, tt = s[timed], t[timed]
    order = np.lexsort((tt, ts))
    burst = _max_in_window(ts[order], tt[order], n, BURST_S)
    per_user = np.bincount(ts, minlength=n).astype(np.float64)
    lag = tt - created_s[ts]
    early = np.bincount(ts, weights=(np.isfinite(lag) & (lag <= BURST_S)), minlength=n)
    early = np.divide(early, per_user, out=np.zeros(n), where=per_user > 0)

    seeds = trust_seeds(followers, tracks)
    return {
        "reciprocity": np.divide(n_mutual, out_deg, out=np.zeros(n), where=out_deg > 0),
        "followers_followed": np.divide(n_mutual, in_deg, out=np.zeros(n), where=in_deg > 0),
        "organic_followers": in_deg - n_mutual,
        "follow_multiplicity": max_mult,
        "repeated_targets": repeated,
        "follow_burst": burst,
        "early_follows": early,
        "signup_burst": signup_burst(created_s),
        "lockstep": _lockstep(s, target, created_s, lockstep_neighbours),
        "trust": trust_rank(adjacency, seeds),
    }
