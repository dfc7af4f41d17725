"""World regimes: how spam is planted and how much real users look like it.

The ``easy`` regime is the world every test and the demo were built on: spammers wear
their signatures (shortener links and explicit bios, batch sign-ups in one second,
repeated follows of every target) and no real user shares them. The ``hard`` regime
follows what spam studies of SoundCloud and Twitter describe when spammers adapt and
when real users are noisy:

- camouflaged spammers of each kind: link spammers with a plain bio and a link on a
  domain of their own, fake-follower batches whose sign-ups spread over ten minutes with
  bios of their own, churn bots that re-follow only some targets, once;
- spam still behaves as spam: link spammers follow hundreds of popular accounts shortly
  after sign-up, fake accounts follow the customers who bought them, churn bots follow
  and re-follow;
- spam that is followed back: some artists follow back whoever follows them, human or
  spam, so spam has followers and reciprocated edges like anyone else;
- look-alike humans: shortener links, explicit bios, a sign-up second shared with
  another account, one re-follow;
- sign-up bursts of real users (a viral moment: dozens of accounts within the hour,
  all following the artist of the moment).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# Look-alike traits of a real user (a bit mask in ``World.lookalike``).
LOOK_SHORTENER = 1
LOOK_EXPLICIT = 2
LOOK_SHARED_SECOND = 4
LOOK_REFOLLOW = 8
LOOKALIKE_TRAITS = {
    "shortener": LOOK_SHORTENER,
    "explicit_bio": LOOK_EXPLICIT,
    "shared_second": LOOK_SHARED_SECOND,
    "refollow": LOOK_REFOLLOW,
}


@dataclass(frozen=True)
class SpamRegime:
    """World parameters of spam and of the real users that resemble it.

    Shares are of the social core (spam kinds), of each kind (camouflage) or of the
    real users (look-alikes); ``follow_backers`` is the share of artists who follow back
    whoever follows them (human or spam), each time with probability ``follow_back``.
    """

    name: str
    link_share: float = 0.02
    fake_share: float = 0.02
    churn_share: float = 0.005
    camouflage_link: float = 0.0
    camouflage_fake: float = 0.0
    camouflage_churn: float = 0.0
    lookalike_share: float = 0.0
    follow_backers: float = 0.0
    follow_back: float = 0.0
    fakes_follow_customers: bool = False
    signup_bursts_per_10k: float = 0.0

    @property
    def easy(self) -> bool:
        """Whether this regime plants spam exactly as the original (easy) world."""
        return self == REGIMES["easy"]


REGIMES: dict[str, SpamRegime] = {
    "easy": SpamRegime("easy"),
    "hard": SpamRegime(
        "hard",
        camouflage_link=0.5,
        camouflage_fake=0.5,
        camouflage_churn=0.5,
        lookalike_share=0.03,
        follow_backers=0.3,
        follow_back=0.3,
        fakes_follow_customers=True,
        signup_bursts_per_10k=3.0,
    ),
}


def regime(name: str) -> SpamRegime:
    """The named regime; ``ValueError`` naming the known ones otherwise."""
    try:
        return REGIMES[name]
    except KeyError:
        raise ValueError(f"unknown world regime {name!r}; known: {', '.join(REGIMES)}") from None


# ---------------------------------------------------------------------- generators
# Each takes the arrays the world is being built from (0-based core indices) and a
# random stream of the hard regime's own; none is called for the easy regime.

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]
Edges = tuple[I64, I64, I64]  # follower, followee (0-based), event time (µs)

DAY_S = 86_400
_US = 1_000_000


def camouflage(
    rng: np.random.Generator,
    regime: SpamRegime,
    spam: npt.NDArray[np.int8],
    batches: list[tuple[int, int]],
    created_s: I64,
    descriptions: dict[int, str],
) -> B:
    """Which spammers hide their signatures; camouflaged batches lose theirs here.

    A camouflaged fake batch signs up over ten minutes instead of one second and its
    accounts write bios of their own (the shared description is dropped).
    """
    hidden = np.zeros(spam.size, dtype=bool)
    if regime.easy:
        return hidden
    u = rng.random(spam.size)
    hidden |= (spam == 1) & (u < regime.camouflage_link)
    hidden |= (spam == 3) & (u < regime.camouflage_churn)
    for first, size in batches:
        if rng.random() >= regime.camouflage_fake:
            continue
        block = slice(first, first + size)
        hidden[block] = True
        created_s[block] = created_s[first] + np.sort(rng.integers(0, 600, size))
        for i in range(first, first + size):
            descriptions.pop(i + 1, None)
    return hidden


def signup_bursts(
    rng: np.random.Generator,
    regime: SpamRegime,
    normal: B,
    spam: npt.NDArray[np.int8],
    created_s: I64,
) -> list[I64]:
    """Viral moments: blocks of consecutive real sign-ups squeezed into one hour.

    Returns the real users of each burst (they follow the artist of the moment).
    """
    n = round(regime.signup_bursts_per_10k * normal.size / 10_000)
    out: list[I64] = []
    tries = 0
    while len(out) < n and tries < 100:
        tries += 1
        size = int(rng.integers(30, 121))
        first = int(rng.integers(1, max(2, normal.size - size - 1)))
        block = slice(first, first + size)
        if first + size >= normal.size or (spam[block] == 2).any():
            continue  # a fake batch keeps its own sign-up times
        created_s[block] = created_s[first] + np.sort(rng.integers(0, 3600, size))
        out.append(first + np.flatnonzero(normal[block]).astype(np.int64))
    return out


def lookalikes(
    rng: np.random.Generator, regime: SpamRegime, normal: B, created_s: I64
) -> npt.NDArray[np.int8]:
    """Real users given one spam-like trait each (bit mask per core user)."""
    traits = np.zeros(normal.size, dtype=np.int8)
    idx = np.flatnonzero(normal[1:] & normal[:-1]) + 1  # a real predecessor to share with
    n = min(idx.size, round(regime.lookalike_share * int(normal.sum())))
    if n == 0:
        return traits
    chosen = rng.choice(idx, size=n, replace=False)
    kinds = np.array([LOOK_SHORTENER, LOOK_EXPLICIT, LOOK_SHARED_SECOND, LOOK_REFOLLOW])
    traits[chosen] = kinds[rng.integers(0, kinds.size, n)]
    for i in np.sort(chosen[traits[chosen] == LOOK_SHARED_SECOND]).tolist():
        created_s[i] = created_s[i - 1]  # in order: a run of them shares one second
        traits[i - 1] |= LOOK_SHARED_SECOND
    return traits


def _popular(rng: np.random.Generator, weights: F64, k: int) -> I64:
    """``k`` distinct indices drawn with probability ∝ ``weights``."""
    cand = np.flatnonzero(weights > 0)
    k = min(k, cand.size)
    p = weights[cand] / weights[cand].sum()
    return np.asarray(rng.choice(cand, size=k, replace=False, p=p), dtype=np.int64)


def hard_follows(
    rng: np.random.Generator,
    regime: SpamRegime,
    edges: Edges,
    created_s: I64,
    spam: npt.NDArray[np.int8],
    camouflaged: B,
    lookalike: npt.NDArray[np.int8],
    batches: list[tuple[int, int]],
    bursts: list[I64],
    attract: F64,
    artist: B,
    end_s: int,
) -> Edges:
    """The follow events of the hard regime, from the easy world's (unsorted)."""
    src, dst, t = edges
    end_us = (end_s - 1) * _US
    created_us = created_s.astype(np.int64) * _US

    # Camouflaged link spammers follow fewer targets, over a week instead of two days.
    link = camouflaged[src] & (spam[src] == 1)
    keep_share = rng.uniform(0.4, 1.0, spam.size)
    drop = link & (rng.random(src.size) >= keep_share[src])
    t = np.where(
        link,
        np.minimum(created_us[src] + (rng.random(src.size) * 7 * DAY_S * _US).astype(np.int64),
                   end_us),
        t,
    )  # fmt: skip
    src, dst, t = src[~drop], dst[~drop], t[~drop]

    # Camouflaged churn bots re-follow a third of their targets, once.
    churn = camouflaged[src] & (spam[src] == 3)
    key = src * spam.size + dst
    _, first = np.unique(key, return_index=True)
    once = np.zeros(src.size, dtype=bool)
    once[first] = True
    keep = ~churn | once
    src, dst, t = src[keep], dst[keep], t[keep]
    again = camouflaged[src] & (spam[src] == 3) & (rng.random(src.size) < 1 / 3)
    parts: list[Edges] = [(src, dst, t), _later(rng, src[again], dst[again], t[again], end_us)]

    # Fake accounts follow the customers who bought them (and, camouflaged, a few more).
    if regime.fakes_follow_customers:
        artist_w = np.where(artist, np.sqrt(attract), 0.0)
        for start, size in batches:
            customers = _popular(rng, artist_w, int(rng.integers(1, 4)))
            members = np.arange(start, start + size, dtype=np.int64)
            s = np.repeat(members, customers.size)
            d = np.tile(customers, size)
            if camouflaged[start]:
                extra = [
                    np.setdiff1d(_popular(rng, attract, int(rng.integers(0, 6))), customers)
                    for _ in members
                ]
                s = np.concatenate([s, np.repeat(members, [e.size for e in extra])])
                d = np.concatenate([d, *extra])
            lag = (rng.random(s.size) * 3 * DAY_S * _US).astype(np.int64)
            parts.append((s, d, np.minimum(created_us[s] + lag, end_us)))

    # A viral moment's sign-ups follow the artist of the moment within two hours.
    have = set((src * spam.size + dst).tolist())
    for members in bursts:
        star = _popular(rng, np.where(artist, attract, 0.0), 1)
        fresh = [m * spam.size + star[0] not in have for m in members.tolist()]
        m = members[np.asarray(fresh, dtype=bool)]
        lag = (rng.random(m.size) * 2 * 3600 * _US).astype(np.int64)
        parts.append((m, np.full(m.size, star[0]), np.minimum(created_us[m] + lag, end_us)))

    # Look-alike humans re-follow one of their targets once.
    ref = (lookalike[src] & LOOK_REFOLLOW) > 0
    if ref.any():
        order = np.flatnonzero(ref)
        _, pick = np.unique(src[order], return_index=True)
        sel = order[pick]
        parts.append(_later(rng, src[sel], dst[sel], t[sel], end_us))

    # Some artists follow back whoever follows them, human or spam.
    s_all = np.concatenate([p[0] for p in parts])
    d_all = np.concatenate([p[1] for p in parts])
    t_all = np.concatenate([p[2] for p in parts])
    backer = artist & (rng.random(spam.size) < regime.follow_backers)
    have = set((s_all * spam.size + d_all).tolist())
    to_backer = backer[d_all]
    pair, first = np.unique(s_all[to_backer] * spam.size + d_all[to_backer], return_index=True)
    fs, fd = pair // spam.size, pair % spam.size
    ft = t_all[to_backer][first]
    pairs = zip(fs.tolist(), fd.tolist(), strict=True)
    new = np.array([b * spam.size + a not in have for a, b in pairs], dtype=bool)
    back = new & (rng.random(fs.size) < regime.follow_back)
    lag = (rng.exponential(DAY_S, int(back.sum())) * _US).astype(np.int64)
    bt = np.minimum(ft[back] + lag, end_us)
    ok = bt > ft[back]
    s_all = np.concatenate([s_all, fd[back][ok]])
    d_all = np.concatenate([d_all, fs[back][ok]])
    t_all = np.concatenate([t_all, bt[ok]])
    return s_all, d_all, t_all


def _later(rng: np.random.Generator, src: I64, dst: I64, t: I64, end_us: int) -> Edges:
    """The same follows made again some days later (dropped past the horizon)."""
    again = t + ((1.0 + rng.random(src.size) * 9.0) * DAY_S * _US).astype(np.int64)
    ok = again < end_us
    return src[ok], dst[ok], again[ok]
