"""The synthetic world and its ground truth, generated from a seed (numpy, vectorised).

Ground-truth API (for the scoring engineers; never served to crawlers)::

    from simulator.world import World
    w = World.generate(seed=7, users=20_000)            # core = min(users, 20_000)

    w.start_us, w.end_us          # default clock start (2026-01-01Z) and horizon end (µs)
    w.live_ids() / w.gone_ids()   # core ids; w.is_gone(ids) for ANY id in 1..users
    w.spam_labels()               # {user_id: "link_spam" | "fake_batch" | "follow_churn"}
    w.spam_kind                   # int8 per core user (index id-1): 0 none, 1..3 as SPAM_KINDS
    w.regime                      # simulator.regimes.SpamRegime (World.generate(regime=...))
    w.camouflaged                 # bool per core user: spam hiding its signatures (hard regime)
    w.lookalike                   # int8 per core user: spam-like traits of a real user
                                  #   (bit mask, simulator.regimes.LOOK_*)
    w.maven_ids()                 # planted bridge users
    w.community                   # int32 per core user (-1 for gone/spam users)
    w.follows                     # Events(src=follower, dst=followee, t_us) sorted by t_us
    w.reposts / w.likes           # Events(src=user, dst=track id, t_us)
    w.tracks                      # Tracks(id, user_id, created_s, public, quality)
    w.cascade_sizes()             # final distinct reposters per track (index track id-1)
    w.viral(threshold)            # bool per track: cascade size >= threshold
    w.shocks                      # dynamics.Shocks: track index, start_h, s0, i0, beta,
                                  #   gamma, omega (one row per shock)
    w.shock_table()               # the same with absolute start times in µs and track ids
    w.period_s, w.period_amp      # per track periodic term (0: none)
    w.play_curve(track_ids)       # (hours, noiseless hourly plays, noiseless cumulative)

Times are integers: ``*_us`` epoch microseconds, ``*_s`` epoch seconds, all UTC. Ids are
1-based and sequential: user ``i`` is ``created_at``-ordered, as are tracks. Users with
id > ``core`` are procedural (no edges, no tracks): their fields are hash functions of
``(seed, id)``, so a 10M-id sweep costs no memory.

Every event has a distinct time within its table, so a list paged with ``limit=1``
recovers every event time exactly from the ``offset`` cursors (the seed study's method).
Follow-churn bots follow the same target several times: each follow event is a separate
row in ``follows`` (and a separate entry in the target's follower list).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

import numpy as np
import numpy.typing as npt

from simulator import dynamics, hashing
from simulator.regimes import (
    REGIMES,
    SpamRegime,
    camouflage,
    hard_follows,
    lookalikes,
    signup_bursts,
)

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]

SPAM_KINDS = ("none", "link_spam", "fake_batch", "follow_churn")
DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
FIRST_USER_S = int(datetime(2008, 1, 1, tzinfo=UTC).timestamp())
DEFAULT_CORE = 20_000
GONE_RATE = 0.06
LIFE_HOURS = 42 * 24  # plays are simulated for 6 weeks after upload
HISTORY_DAYS = 180  # tracks are uploaded from start-180d to the horizon's end

# hash streams for procedural fields
S_GONE, S_PLAN, S_NAME, S_CITY, S_DESC, S_TRACK, S_FAULT, S_CLIENT = range(1, 9)


@dataclass(frozen=True)
class Events:
    """A table of timed events ``src -> dst`` sorted by ``t_us`` (distinct times)."""

    src: I64
    dst: I64
    t_us: I64

    def __len__(self) -> int:
        return int(self.t_us.size)

    def visible(self, now_us: int) -> Events:
        """Events that happened at or before ``now_us``."""
        k = int(np.searchsorted(self.t_us, now_us, side="right"))
        return Events(self.src[:k], self.dst[:k], self.t_us[:k])


@dataclass(frozen=True)
class Tracks:
    """All tracks, index ``id - 1``; private tracks have no likes, reposts or plays."""

    id: I64
    user_id: I64
    created_s: I64
    public: B
    quality: F64


@dataclass(frozen=True)
class Csr:
    """Events grouped by a key (0-based), time-ascending inside each group."""

    ptr: I64
    other: I64
    t_us: I64

    @staticmethod
    def build(key: I64, other: I64, t_us: I64, n: int) -> Csr:
        """Group ``(key, other, t_us)`` rows by ``key`` in ``[0, n)``."""
        order = np.lexsort((t_us, key))
        counts = np.bincount(key, minlength=n)
        ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=ptr[1:])
        return Csr(ptr, other[order].astype(np.int64), t_us[order].astype(np.int64))

    def count(self, k: int, now_us: int) -> int:
        """Events of group ``k`` at or before ``now_us``."""
        lo, hi = int(self.ptr[k]), int(self.ptr[k + 1])
        if lo == hi:
            return 0
        # fast paths (request handlers call this a lot): all or nothing visible yet
        if self.t_us[hi - 1] <= now_us:
            return hi - lo
        if self.t_us[lo] > now_us:
            return 0
        return int(self.t_us[lo:hi].searchsorted(now_us, side="right"))

    def counts(self, now_us: int) -> I64:
        """Visible events per group at ``now_us`` (vectorised)."""
        n = self.ptr.size - 1
        vis = self.t_us <= now_us
        key = np.repeat(np.arange(n), np.diff(self.ptr))
        return np.bincount(key[vis], minlength=n).astype(np.int64)


def _gather(ptr: I64, data: I64, nodes: I64) -> tuple[I64, I64]:
    """``data`` of all groups in ``nodes`` concatenated, and the position in ``nodes``."""
    lo = ptr[nodes]
    lens = ptr[nodes + 1] - lo
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    owner = np.repeat(np.arange(nodes.size), lens)
    starts = np.repeat(lo - np.concatenate(([0], np.cumsum(lens)[:-1])), lens)
    idx = np.arange(total) + starts
    return data[idx], owner


def _distinct_times(t_us: I64) -> tuple[I64, I64]:
    """Sort order and the times nudged by whole µs so that no two are equal."""
    order = np.argsort(t_us, kind="stable")
    t = t_us[order]
    ramp = np.arange(t.size, dtype=np.int64)
    return order, np.maximum.accumulate(t - ramp) + ramp


def created_s_of(user_id: int, users: int, start_s: int) -> int:
    """Procedural ``created_at`` (epoch s) of any id: grows with the id."""
    span = start_s - 2 * 86400 - FIRST_USER_S
    return FIRST_USER_S + (user_id - 1) * span // max(users, 1)


@dataclass
class World:
    """A generated world: arrays for the social core plus the rules for the rest."""

    seed: int
    users: int
    core: int
    start_us: int
    end_us: int
    created_s: I64
    gone: B
    spam_kind: npt.NDArray[np.int8]
    community: npt.NDArray[np.int32]
    maven: B
    artist: B
    batch_description: dict[int, str]
    follows: Events
    tracks: Tracks
    reposts: Events
    likes: Events
    shocks: dynamics.Shocks
    period_s: I64
    period_amp: F64
    regime: SpamRegime
    camouflaged: B
    lookalike: npt.NDArray[np.int8]
    play_cum: npt.NDArray[np.float32] = field(repr=False)

    # ------------------------------------------------------------------ generation

    @classmethod
    def generate(
        cls,
        seed: int,
        users: int,
        core: int | None = None,
        start: datetime | None = None,
        horizon_days: float = 30.0,
        regime: SpamRegime | None = None,
    ) -> World:
        """Generate the world of ``seed`` with ids ``1..users`` (the first ``core`` social).

        ``regime`` (default: the easy one) sets how spam is planted and how much real
        users resemble it (:mod:`simulator.regimes`).
        """
        if users < 1:
            raise ValueError("users must be >= 1")
        regime = regime or REGIMES["easy"]
        # The hard regime draws from a stream of its own, so the easy world stays the
        # same world it always was.
        hard_rng = np.random.default_rng(np.random.SeedSequence([seed, 0x4A2D]))
        core = min(users, DEFAULT_CORE if core is None else core)
        start = start or DEFAULT_START
        start_s = int(start.timestamp())
        end_s = start_s + int(horizon_days * 86400)
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x50F1EE7]))
        ids = np.arange(1, core + 1, dtype=np.int64)
        span = start_s - 2 * 86400 - FIRST_USER_S
        created_s = FIRST_USER_S + (ids - 1) * span // max(users, 1)
        gone = hashing.uniform_array(seed, S_GONE, ids) < GONE_RATE

        spam = np.zeros(core, dtype=np.int8)
        batch_description: dict[int, str] = {}
        batches = _plant_fake_batches(
            rng, seed, created_s, gone, spam, batch_description, regime.fake_share
        )
        live_free = np.flatnonzero(~gone & (spam == 0))
        n_link = round(regime.link_share * core)
        n_churn = max(1 if core >= 200 else 0, round(regime.churn_share * core))
        picked = rng.choice(live_free, size=min(n_link + n_churn, live_free.size), replace=False)
        spam[picked[:n_link]] = 1
        spam[picked[n_link:]] = 3
        camouflaged = camouflage(hard_rng, regime, spam, batches, created_s, batch_description)

        normal = ~gone & (spam == 0)
        normal_idx = np.flatnonzero(normal)
        bursts = signup_bursts(hard_rng, regime, normal, spam, created_s)
        lookalike = lookalikes(hard_rng, regime, normal, created_s)
        n_comm = max(2, core // 500)
        cw = 1.0 / (np.arange(n_comm) + 1.0) ** 0.8
        community = np.full(core, -1, dtype=np.int32)
        community[normal_idx] = rng.choice(n_comm, size=normal_idx.size, p=cw / cw.sum())

        attract = np.zeros(core)
        attract[normal_idx] = rng.pareto(1.1, normal_idx.size) + 1.0
        n_live = int((~gone).sum())
        n_art = min(normal_idx.size, round(0.072 * n_live))
        aw = np.sqrt(attract[normal_idx])
        art_idx = (
            rng.choice(normal_idx, size=n_art, replace=False, p=aw / aw.sum())
            if n_art
            else np.zeros(0, np.int64)
        )
        artist = np.zeros(core, dtype=bool)
        artist[art_idx] = True
        attract[art_idx] *= 4.0
        n_mav = min(normal_idx.size, max(3, round(0.005 * core)))
        mav_idx = rng.choice(normal_idx, size=n_mav, replace=False)
        maven = np.zeros(core, dtype=bool)
        maven[mav_idx] = True
        attract[mav_idx] *= 3.0

        end_us = end_s * 1_000_000
        follows = _follow_graph(rng, created_s, spam, normal_idx, community, attract, maven, end_s)
        if not regime.easy:
            src, dst, t = hard_follows(
                hard_rng, regime, (follows.src - 1, follows.dst - 1, follows.t_us),
                created_s, spam, camouflaged, lookalike, batches, bursts, attract, artist, end_s,
            )  # fmt: skip
            order, t = _distinct_times(t)
            follows = Events(src[order] + 1, dst[order] + 1, t)
        tracks = _tracks(rng, created_s, art_idx, start_s, end_s)
        act = np.zeros(core)
        act[normal_idx] = rng.beta(2.0, 5.0, normal_idx.size) * 2.0
        reposts, likes = _cascades(rng, core, follows, spam, tracks, act, maven, end_us)
        foll_final = np.bincount(follows.dst - 1, minlength=core)
        shocks, period_s, period_amp = _shocks(rng, tracks, reposts, foll_final, start_s)
        hourly = dynamics.hourly_plays(
            shocks, tracks.id.size, LIFE_HOURS, tracks.created_s, period_s, period_amp
        )
        noise = np.exp(0.25 * rng.standard_normal(hourly.shape) - 0.03125)
        play_cum = dynamics.cumulative(hourly * noise).astype(np.float32)
        return cls(
            seed=seed,
            users=users,
            core=core,
            start_us=start_s * 1_000_000,
            end_us=end_us,
            created_s=created_s,
            gone=gone,
            spam_kind=spam,
            community=community,
            maven=maven,
            artist=artist,
            batch_description=batch_description,
            follows=follows,
            tracks=tracks,
            reposts=reposts,
            likes=likes,
            shocks=shocks,
            period_s=period_s,
            period_amp=period_amp,
            regime=regime,
            camouflaged=camouflaged,
            lookalike=lookalike,
            play_cum=play_cum,
        )

    # ------------------------------------------------------------------ truth accessors

    def is_gone(self, ids: npt.ArrayLike) -> B:
        """Whether each id (any id in ``1..users``) is gone (404); ids outside are gone too."""
        arr = np.asarray(ids, dtype=np.int64)
        out = hashing.uniform_array(self.seed, S_GONE, arr) < GONE_RATE
        out |= (arr < 1) | (arr > self.users)
        in_core = (arr >= 1) & (arr <= self.core)
        out[in_core] = self.gone[arr[in_core] - 1]
        return out

    def live_ids(self) -> I64:
        """Live ids of the social core."""
        return np.flatnonzero(~self.gone).astype(np.int64) + 1

    def gone_ids(self) -> I64:
        """Gone ids of the social core (use :meth:`is_gone` beyond it)."""
        return np.flatnonzero(self.gone).astype(np.int64) + 1

    def spam_labels(self) -> dict[int, str]:
        """Planted spam: user id -> kind (``link_spam``, ``fake_batch``, ``follow_churn``)."""
        idx = np.flatnonzero(self.spam_kind)
        return {int(i) + 1: SPAM_KINDS[int(self.spam_kind[i])] for i in idx}

    def maven_ids(self) -> I64:
        """The planted bridge users."""
        return np.flatnonzero(self.maven).astype(np.int64) + 1

    def cascade_sizes(self) -> I64:
        """Final number of reposts of each track (index ``track_id - 1``)."""
        return np.bincount(self.reposts.dst - 1, minlength=self.tracks.id.size).astype(np.int64)

    def like_totals(self) -> I64:
        """Final number of likes of each track (index ``track_id - 1``)."""
        return np.bincount(self.likes.dst - 1, minlength=self.tracks.id.size).astype(np.int64)

    def viral(self, threshold: int = 25) -> B:
        """Whether each track's final cascade (reposts) reaches ``threshold``."""
        return self.cascade_sizes() >= threshold

    def shock_table(self) -> dict[str, npt.NDArray[np.generic]]:
        """Shock parameters with track ids and absolute start times (µs)."""
        sh = self.shocks
        created = self.tracks.created_s[sh.track]
        return {
            "track_id": sh.track + 1,
            "start_us": (created + sh.start_h * 3600) * 1_000_000,
            "s0": sh.s0,
            "i0": sh.i0,
            "beta": sh.beta,
            "gamma": sh.gamma,
            "omega": sh.omega,
        }

    def play_curve(self, track_ids: npt.ArrayLike) -> tuple[I64, F64, F64]:
        """Noiseless plays of ``track_ids``: (hour start times in µs per track, hourly, cumulative).

        Returns ``hours_us`` of shape ``(n, LIFE_HOURS + 1)`` (the times the cumulative
        values refer to), ``hourly`` ``(n, LIFE_HOURS)`` and ``cumulative``
        ``(n, LIFE_HOURS + 1)``; after ``LIFE_HOURS`` the counter stays flat.
        """
        tid = np.atleast_1d(np.asarray(track_ids, dtype=np.int64))
        idx = tid - 1
        remap = np.full(self.tracks.id.size, -1, dtype=np.int64)
        remap[idx] = np.arange(idx.size)
        sel = remap[self.shocks.track] >= 0
        sub = self.shocks.subset(sel)
        sub = dynamics.Shocks(
            remap[sub.track], sub.start_h, sub.s0, sub.i0, sub.beta, sub.gamma, sub.omega
        )
        created = self.tracks.created_s[idx]
        hourly = dynamics.hourly_plays(
            sub, idx.size, LIFE_HOURS, created, self.period_s[idx], self.period_amp[idx]
        )
        hours_us = (created[:, None] + np.arange(LIFE_HOURS + 1) * 3600) * 1_000_000
        return hours_us, hourly, dynamics.cumulative(hourly)

    # ------------------------------------------------------------------ serving indexes

    @cached_property
    def followers_of(self) -> Csr:
        """Follow events grouped by followee (core index)."""
        f = self.follows
        return Csr.build(f.dst - 1, f.src, f.t_us, self.core)

    @cached_property
    def followings_of(self) -> Csr:
        """Follow events grouped by follower (core index)."""
        f = self.follows
        return Csr.build(f.src - 1, f.dst, f.t_us, self.core)

    @cached_property
    def reposters_of(self) -> Csr:
        """Reposts grouped by track index."""
        r = self.reposts
        return Csr.build(r.dst - 1, r.src, r.t_us, self.tracks.id.size)

    @cached_property
    def likers_of(self) -> Csr:
        """Likes grouped by track index."""
        r = self.likes
        return Csr.build(r.dst - 1, r.src, r.t_us, self.tracks.id.size)

    @cached_property
    def likes_by(self) -> Csr:
        """Likes grouped by user (core index); ``other`` is the track id."""
        r = self.likes
        return Csr.build(r.src - 1, r.dst, r.t_us, self.core)

    @cached_property
    def tracks_by(self) -> Csr:
        """Tracks grouped by owner (core index); ``other`` is the track id, ``t_us`` upload."""
        t = self.tracks
        return Csr.build(t.user_id - 1, t.id, t.created_s * 1_000_000, self.core)

    @cached_property
    def public_tracks_by(self) -> Csr:
        """Public tracks grouped by owner (for ``track_count``)."""
        t = self.tracks
        p = t.public
        return Csr.build(t.user_id[p] - 1, t.id[p], t.created_s[p] * 1_000_000, self.core)

    def plays_at(self, track_index: int, now_us: int) -> int:
        """The served (noisy) ``playback_count`` of a track at ``now_us``."""
        if not self.tracks.public[track_index]:
            return 0
        h = (now_us / 1_000_000 - self.tracks.created_s[track_index]) / 3600.0
        if h <= 0:
            return 0
        row = self.play_cum[track_index]
        if h >= LIFE_HOURS:
            return int(row[LIFE_HOURS])
        k = int(h)
        frac = h - k
        return int(float(row[k]) + frac * float(row[k + 1] - row[k]))

    def warm(self) -> None:
        """Build every serving index now (before forking worker processes)."""
        for name in (
            "followers_of",
            "followings_of",
            "reposters_of",
            "likers_of",
            "likes_by",
            "tracks_by",
            "public_tracks_by",
        ):
            getattr(self, name)


# ---------------------------------------------------------------------- generators


_BATCH_DESCRIPTIONS = (
    "Music lover. Follow for follow!",
    "new account, check my playlists",
    "DM for promo deals",
    "just vibes",
    "Official fan page",
)


def _plant_fake_batches(
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


def _follow_graph(
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
    order, t_us = _distinct_times(t_us)
    return Events(src[order] + 1, dst[order] + 1, t_us)


def _tracks(
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


def _cascades(
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
            users, pos = _gather(fol.ptr, fol.other, front)
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
        order, tt = _distinct_times(tt)
        return Events(uu[order] + 1, kk[order].astype(np.int64) + 1, tt)

    return table(rp_u, rp_t, rp_k), table(lk_u, lk_t, lk_k)


def _shocks(
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
