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
from datetime import datetime
from functools import cached_property

import numpy as np
import numpy.typing as npt

from simulator import dynamics, hashing
from simulator.events import F64, I64, B, Csr, Events, Tracks, distinct_times
from simulator.growth import (
    draw_shocks,
    grow_cascades,
    grow_follow_graph,
    plant_fake_batches,
    upload_tracks,
)
from simulator.params import (
    DEFAULT_CORE,
    DEFAULT_START,
    FIRST_USER_S,
    GONE_RATE,
    LIFE_HOURS,
    S_GONE,
    SPAM_KINDS,
)
from simulator.regimes import (
    REGIMES,
    SpamRegime,
    camouflage,
    hard_follows,
    lookalikes,
    signup_bursts,
)


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
        batches = plant_fake_batches(
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
        follows = grow_follow_graph(
            rng, created_s, spam, normal_idx, community, attract, maven, end_s
        )
        if not regime.easy:
            src, dst, t = hard_follows(
                hard_rng, regime, (follows.src - 1, follows.dst - 1, follows.t_us),
                created_s, spam, camouflaged, lookalike, batches, bursts, attract, artist, end_s,
            )  # fmt: skip
            order, t = distinct_times(t)
            follows = Events(src[order] + 1, dst[order] + 1, t)
        tracks = upload_tracks(rng, created_s, art_idx, start_s, end_s)
        act = np.zeros(core)
        act[normal_idx] = rng.beta(2.0, 5.0, normal_idx.size) * 2.0
        reposts, likes = grow_cascades(rng, core, follows, spam, tracks, act, maven, end_us)
        foll_final = np.bincount(follows.dst - 1, minlength=core)
        shocks, period_s, period_amp = draw_shocks(rng, tracks, reposts, foll_final, start_s)
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
