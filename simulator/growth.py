"""How a world grows from its seed: follow graph, tracks, cascades, shocks, spam batches.

Pure numpy on a seeded generator: :meth:`simulator.world.World.generate` calls these in
order, so a seed always gives the same world.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from simulator import dynamics, hashing
from simulator.events import F64, I64, B, Csr, Events, Tracks, distinct_times, gather
from simulator.params import HISTORY_DAYS, LIFE_HOURS, S_DESC

_BATCH_DESCRIPTIONS = (
    "Music lover. Follow for follow!",
    "new account, check my playlists",
    "DM for promo deals",
    "just vibes",
    "Official fan page",
)


def plant_fake_batches(
    rng: np.random.Generator,
    seed: int,
    created_s: I64,
    gone: B,
    spam: npt.NDArray[np.int8],
    descriptions: dict[int, str],
    share: float,
) -> list[tuple[int, int]]:
    """Batches of consecutive ids sharing one created_at second and one description.

    Returns each batch's first index and size.
    """
    core = created_s.size
    budget = round(share * core)
    taken = 0
    batches: list[tuple[int, int]] = []
    tries = 0
    while taken < budget and tries < 1000:
        tries += 1
        size = int(rng.integers(5, 31))
        first = int(rng.integers(0, max(1, core - size)))
        if first + size > core or spam[first : first + size].any():
            continue
        # the batch goes through the same sign-up second: all live, same created_at
        gone[first : first + size] = False
        created_s[first : first + size] = created_s[first]
        spam[first : first + size] = 2
        text = _BATCH_DESCRIPTIONS[int(rng.integers(len(_BATCH_DESCRIPTIONS)))]
        tag = hashing.key(seed, S_DESC, first) % 100_000
        for i in range(first, first + size):
            descriptions[i + 1] = f"{text} #{tag:05d}"
        taken += size
        batches.append((first, size))
    return batches


def _sample(
    rng: np.random.Generator,
    weights: F64,
    groups: npt.NDArray[np.int32] | None,
    want: npt.NDArray[np.int32] | None,
    n: int,
) -> I64:
    """``n`` indices drawn with probability ∝ ``weights`` (within ``want`` groups if given)."""
    cand = np.flatnonzero(weights > 0)
    if cand.size == 0:
        return np.zeros(0, np.int64)
    if groups is None or want is None:
        cum = np.cumsum(weights[cand])
        r = rng.random(n) * cum[-1]
        pick = np.minimum(np.searchsorted(cum, r, side="right"), cand.size - 1)
        return np.asarray(cand[pick], dtype=np.int64)
    order = cand[np.argsort(groups[cand], kind="stable")]
    g = groups[order]
    cum = np.cumsum(weights[order])
    n_groups = int(groups.max()) + 1
    first = np.searchsorted(g, np.arange(n_groups), side="left")
    last = np.searchsorted(g, np.arange(n_groups), side="right")
    base = np.where(first > 0, cum[np.maximum(first - 1, 0)], 0.0)
    top = np.where(last > 0, cum[np.maximum(last - 1, 0)], 0.0)
    r = base[want] + rng.random(n) * (top[want] - base[want])
    pos = np.minimum(np.searchsorted(cum, r, side="right"), order.size - 1)
    return np.asarray(order[pos], dtype=np.int64)


def _distinct_targets(rng: np.random.Generator, attract: F64, sizes: I64) -> I64:
    """For each size, that many distinct users drawn with probability ∝ ``attract``."""
    cand = np.flatnonzero(attract > 0)
    cum = np.cumsum(attract[cand])
    parts = []
    for k in sizes.tolist():
        want = 2 * k + 16
        while True:
            # oversample, keep the first k distinct draws (in draw order)
            draws = np.minimum(np.searchsorted(cum, rng.random(want) * cum[-1], "right"),
                               cand.size - 1)  # fmt: skip
            _, first = np.unique(draws, return_index=True)
            if first.size >= k:
                parts.append(cand[draws[np.sort(first)[:k]]])
                break
            want *= 4
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def grow_follow_graph(
    rng: np.random.Generator,
    created_s: I64,
    spam: npt.NDArray[np.int8],
    normal_idx: I64,
    community: npt.NDArray[np.int32],
    attract: F64,
    maven: B,
    end_s: int,
) -> Events:
    """Power-law follower graph with communities, mavens and planted spam follows."""
    deg = np.minimum(np.floor(rng.lognormal(1.6, 1.2, normal_idx.size)), 1500).astype(np.int64)
    deg[maven[normal_idx]] += 20
    src = np.repeat(normal_idx, deg)
    cross_p = np.where(maven[src], 0.5, 0.15)
    cross = rng.random(src.size) < cross_p
    dst = np.empty(src.size, dtype=np.int64)
    inside = ~cross
    dst[inside] = _sample(rng, attract, community, community[src[inside]], int(inside.sum()))
    n_cross = int(cross.sum())
    to_maven = rng.random(n_cross) < 0.5
    # flattened weights: every maven gets a broad cross-community audience, not just a few
    mav_w = np.where(maven, attract**0.25, 0.0)
    cross_dst = np.empty(n_cross, dtype=np.int64)
    cross_dst[to_maven] = _sample(rng, mav_w, None, None, int(to_maven.sum()))
    cross_dst[~to_maven] = _sample(rng, attract, None, None, int((~to_maven).sum()))
    dst[cross] = cross_dst
    keep = src != dst
    pair = np.unique(src[keep] * created_s.size + dst[keep])
    src, dst = pair // created_s.size, pair % created_s.size
    lo = np.maximum(created_s[src], created_s[dst]).astype(np.float64)
    t = lo + rng.random(src.size) * (end_s - lo)
    parts_src, parts_dst, parts_t = [src], [dst], [t]

    link = np.flatnonzero(spam == 1)
    if link.size:
        n = np.minimum(rng.integers(250, 351, link.size), int((attract > 0).sum()))
        s = np.repeat(link, n)
        d = _distinct_targets(rng, attract, n)
        lo = np.maximum(created_s[s], created_s[d]).astype(np.float64)
        parts_src.append(s)
        parts_dst.append(d)
        parts_t.append(np.minimum(lo + rng.random(s.size) * 2 * 86400, end_s - 1))

    churn = np.flatnonzero(spam == 3)
    if churn.size:
        n = np.minimum(rng.integers(20, 61, churn.size), int((attract > 0).sum()))
        s = np.repeat(churn, n)
        d = _distinct_targets(rng, attract, n)
        reps = rng.integers(2, 7, s.size)
        s, d = np.repeat(s, reps), np.repeat(d, reps)
        lo = np.maximum(created_s[s], created_s[d]).astype(np.float64)
        parts_src.append(s)
        parts_dst.append(d)
        parts_t.append(lo + rng.random(s.size) * (end_s - lo))

    src = np.concatenate(parts_src)
    dst = np.concatenate(parts_dst)
    t_us = (np.concatenate(parts_t) * 1_000_000).astype(np.int64)
    order, t_us = distinct_times(t_us)
    return Events(src[order] + 1, dst[order] + 1, t_us)


def upload_tracks(
    rng: np.random.Generator, created_s: I64, art_idx: I64, start_s: int, end_s: int
) -> Tracks:
    """Artists' uploads, ids in upload order."""
    n = np.minimum(rng.geometric(0.3, art_idx.size), 150)
    owner = np.repeat(art_idx, n)
    lo = np.maximum(created_s[owner], start_s - HISTORY_DAYS * 86400)
    hi = end_s - 86400
    t = (lo + rng.random(owner.size) * np.maximum(hi - lo, 0)).astype(np.int64)
    order = np.lexsort((owner, t))
    owner, t = owner[order], t[order]
    public = rng.random(owner.size) >= 0.06
    quality = rng.lognormal(0.0, 1.0, owner.size)
    ids = np.arange(1, owner.size + 1, dtype=np.int64)
    return Tracks(ids, owner + 1, t, public, quality)


def grow_cascades(
    rng: np.random.Generator,
    core: int,
    follows: Events,
    spam: npt.NDArray[np.int8],
    tracks: Tracks,
    act: F64,
    maven: B,
    end_us: int,
) -> tuple[Events, Events]:
    """Independent-cascade spreading of each public track over the follower graph."""
    normal_edge = (spam[follows.src - 1] == 0) & (spam[follows.dst - 1] == 0)
    pairs = np.unique((follows.dst[normal_edge] - 1) * core + (follows.src[normal_edge] - 1))
    fol = Csr.build(pairs // core, pairs % core, np.zeros(pairs.size, np.int64), core)
    boost = np.where(maven, 2.5, 1.0)
    rp_u, rp_t, rp_k, lk_u, lk_t, lk_k = [], [], [], [], [], []
    hour = 3_600_000_000
    for k in np.flatnonzero(tracks.public):
        q = tracks.quality[k]
        owner = int(tracks.user_id[k]) - 1
        seen = np.array([owner], dtype=np.int64)
        front = np.array([owner], dtype=np.int64)
        front_t = np.array([int(tracks.created_s[k]) * 1_000_000], dtype=np.int64)
        while front.size and seen.size < 20_000:
            users, pos = gather(fol.ptr, fol.other, front)
            if users.size == 0:
                break
            delay = (rng.lognormal(1.5, 1.0, users.size) * hour).astype(np.int64)
            te = front_t[pos] + delay
            order = np.argsort(te, kind="stable")
            users, te = users[order], te[order]
            users, first = np.unique(users, return_index=True)
            te = te[first]
            fresh = ~np.isin(users, seen) & (te < end_us)
            users, te = users[fresh], te[fresh]
            if users.size == 0:
                break
            seen = np.concatenate((seen, users))
            a = act[users]
            like = rng.random(users.size) < np.minimum(0.6, 0.05 * q * a)
            rep = rng.random(users.size) < np.minimum(0.4, 0.02 * q * a * boost[users])
            lt = te + (rng.exponential(2.0, users.size) * hour).astype(np.int64)
            rt = te + (rng.exponential(3.0, users.size) * hour).astype(np.int64)
            like &= lt < end_us
            rep &= rt < end_us
            lk_u.append(users[like])
            lk_t.append(lt[like])
            lk_k.append(np.full(int(like.sum()), k))
            rp_u.append(users[rep])
            rp_t.append(rt[rep])
            rp_k.append(np.full(int(rep.sum()), k))
            front, front_t = users[rep], rt[rep]

    def table(u: list[I64], t: list[I64], k: list[I64]) -> Events:
        if not u:
            z = np.zeros(0, np.int64)
            return Events(z, z, z)
        uu, tt, kk = np.concatenate(u), np.concatenate(t), np.concatenate(k)
        order, tt = distinct_times(tt)
        return Events(uu[order] + 1, kk[order].astype(np.int64) + 1, tt)

    return table(rp_u, rp_t, rp_k), table(lk_u, lk_t, lk_k)


def draw_shocks(
    rng: np.random.Generator,
    tracks: Tracks,
    reposts: Events,
    followers: I64,
    start_s: int,
) -> tuple[dynamics.Shocks, I64, F64]:
    """Upload shock, shocks from the two biggest reposters, occasional external shocks."""
    pub = np.flatnonzero(tracks.public)
    q = tracks.quality
    trk = [pub]
    s0 = [
        (20.0 + 8.0 * followers[tracks.user_id[pub] - 1])
        * np.sqrt(q[pub])
        * rng.uniform(0.5, 1.5, pub.size)
    ]
    start_h = [np.zeros(pub.size, dtype=np.int64)]
    # reposts by well-followed users start a new shock of their own
    rf = followers[reposts.src - 1]
    big = rf >= 30
    if big.any():
        rk = reposts.dst[big] - 1
        order = np.lexsort((-rf[big], rk))
        rk_sorted = rk[order]
        rank = np.arange(rk_sorted.size) - np.searchsorted(rk_sorted, rk_sorted, side="left")
        top = order[rank < 2]
        tk = rk[top]
        h = (reposts.t_us[big][top] // 1_000_000 - tracks.created_s[tk]) // 3600
        trk.append(tk)
        s0.append(4.0 * rf[big][top] * rng.uniform(0.5, 1.5, top.size))
        start_h.append(h.astype(np.int64))
    ext = pub[rng.random(pub.size) < 0.08]
    trk.append(ext)
    s0.append(s0[0][np.searchsorted(pub, ext)] * rng.uniform(2.0, 10.0, ext.size))
    start_h.append(rng.integers(48, 30 * 24, ext.size).astype(np.int64))
    track = np.concatenate(trk).astype(np.int64)
    s0_all = np.concatenate(s0)
    sh_h = np.concatenate(start_h)
    keep = sh_h < LIFE_HOURS
    track, s0_all, sh_h = track[keep], s0_all[keep], sh_h[keep]
    n = track.size
    r0 = rng.uniform(0.6, 2.5, n)
    gamma = rng.uniform(0.03, 0.25, n)
    beta = r0 * gamma / s0_all
    omega = rng.uniform(0.3, 2.0, n)
    i0 = np.maximum(1.0, 0.05 * s0_all)
    order = np.lexsort((sh_h, track))
    shocks = dynamics.Shocks(
        track[order],
        sh_h[order],
        s0_all[order],
        i0[order],
        beta[order],
        gamma[order],
        omega[order],
    )
    u = rng.random(tracks.id.size)
    period_s = np.where(u < 0.25, 7 * 86400, np.where(u < 0.35, 86400, 0)).astype(np.int64)
    period_amp = np.where(period_s > 0, rng.uniform(0.2, 0.6, tracks.id.size), 0.0)
    return shocks, period_s, period_amp
