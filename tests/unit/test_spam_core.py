"""scoring.spam: features (profile and behaviour), selection, elbow, naming, baselines.

The fit on whole simulated worlds runs through PostgreSQL in
``tests/integration/test_spam_truth.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from scoring.spam import baselines, behaviour, core

FAST = core.SpamParams(k_max=15, per_class=400, max_iter=200)


def test_profanity_and_shorteners() -> None:
    assert core.has_profanity("FREE followers no scam fuck yeah")
    assert core.has_profanity("make $$$, f*cking easy money")
    assert core.has_profanity("xxx webcam")
    assert not core.has_profanity("Scunthorpe bass music")  # words, not substrings
    assert not core.has_profanity(None)
    assert core.is_shortener("https://bit.ly/abc") and core.is_shortener("www.tinyurl.com/x")
    assert not core.is_shortener("https://instagram.com/bit.ly")


def _events(rows: list[tuple[int, int, float]]) -> behaviour.FollowEvents:
    arr = np.array(rows, dtype=np.float64).reshape(-1, 3)
    return behaviour.FollowEvents(arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2])


DAY = 86_400.0


def test_reciprocity_follow_backs_and_repeated_follows() -> None:
    users = np.array([1, 2, 3, 4], dtype=np.int64)
    ev = _events(
        [(1, 2, 10), (1, 3, 20), (1, 3, 30 * DAY), (1, 3, 60 * DAY), (2, 1, 5),
         (3, 1, 7), (4, 1, 9), (9, 1, 11)]  # user 9 is not crawled: ignored
    )  # fmt: skip
    created = np.zeros(4)
    f = behaviour.behaviour_features(users, created, np.zeros(4), np.zeros(4), ev)
    assert f["reciprocity"].tolist() == [1.0, 1.0, 1.0, 0.0]
    # user 1 follows back 2 of its 3 followers; 4 follows nobody back
    assert f["followers_followed"].tolist() == pytest.approx([2 / 3, 1.0, 1.0, 0.0])
    assert f["organic_followers"].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert f["follow_multiplicity"].tolist() == [3.0, 1.0, 1.0, 1.0]
    assert f["repeated_targets"].tolist() == [1.0, 0.0, 0.0, 0.0]


def test_follow_bursts_and_early_follows() -> None:
    users = np.array([1, 2], dtype=np.int64)
    created = np.array([0.0, 0.0])
    # user 1: 30 follows within a day of sign-up; user 2: one follow a month for a year
    rows = [(1, 100 + i, 1000.0 * i) for i in range(30)]
    rows += [(2, 200 + i, 30 * DAY * (i + 1)) for i in range(12)]
    rows.append((2, 300, float("nan")))  # no time: counted nowhere in timing
    f = behaviour.behaviour_features(users, created, np.zeros(2), np.zeros(2), _events(rows))
    assert f["follow_burst"].tolist() == [30.0, 1.0]
    assert f["early_follows"].tolist() == [1.0, 0.0]


def test_signup_bursts_and_lockstep() -> None:
    created = np.array([0.0, 60.0, 500.0, 5000.0, np.nan, 5000.0 + 3 * DAY])
    assert behaviour.signup_burst(created).tolist() == [2.0, 2.0, 2.0, 0.0, 0.0, 0.0]
    users = np.arange(1, 7, dtype=np.int64)
    # 1..3 follow the same two customers; 4 and 6 follow unrelated accounts
    rows = [(u, c, 0.0) for u in (1, 2, 3) for c in (10, 11)] + [(4, 12, 0.0), (6, 13, 0.0)]
    f = behaviour.behaviour_features(
        users, created, np.zeros(6), np.zeros(6), _events(rows), lockstep_neighbours=2
    )
    assert f["lockstep"].tolist() == [2.0, 2.0, 2.0, 0.0, 0.0, 0.0]


def test_trust_flows_from_seeds_along_follows() -> None:
    followers = np.array([50.0, 0.0, 0.0, 0.0])
    tracks = np.array([3.0, 0.0, 0.0, 0.0])
    seeds = behaviour.trust_seeds(followers, tracks, share=0.25)
    assert seeds.tolist() == [True, False, False, False]
    users = np.arange(1, 5, dtype=np.int64)
    # the seed follows 2, 2 follows 3; nobody follows 4 (it follows the seed)
    ev = _events([(1, 2, 0.0), (2, 3, 0.0), (4, 1, 0.0)])
    trust = behaviour.behaviour_features(users, np.zeros(4), followers, tracks, ev)["trust"]
    assert trust[0] > trust[1] > trust[2] > 0 and trust[3] == 0


def _input(n: int, **overrides: object) -> core.SpamInput:
    rng = np.random.default_rng(0)
    base = dict(
        user_id=np.arange(1, n + 1, dtype=np.int64),
        followers=rng.integers(0, 100, n).astype(float),
        followings=rng.integers(0, 100, n).astype(float),
        tracks=rng.integers(0, 3, n).astype(float),
        likes=rng.integers(0, 9, n).astype(float),
        reposts=np.full(n, np.nan),
        playlists=np.zeros(n),
        comments=np.zeros(n),
        plan=["free"] * n,
        description=[None] * n,
        created_at_s=np.arange(n, dtype=float) * 1000,
        urls=[[] for _ in range(n)],
        url_titles=[[] for _ in range(n)],
        follows=_events([]),
    )
    base.update(overrides)
    return core.SpamInput(**base)  # type: ignore[arg-type]


def test_missing_counts_exclude_users_and_say_why() -> None:
    followers = np.arange(20, dtype=float)
    followers[[3, 7]] = np.nan
    features = core.build_features(_input(20, followers=followers))
    assert features.scorable.sum() == 18 and not features.scorable[[3, 7]].any()
    assert features.unscorable_reasons == {"missing follower, following or track count": 2}
    assert np.isfinite(features.matrix).all()


def test_duplicates_and_batches_are_counted() -> None:
    desc = ["same  bio", "Same bio", None, "other"]
    created = np.array([100.0, 100.4, 100.9, 500.0])
    urls = [["https://x.com/a"], ["https://x.com/a/"], [], ["https://bit.ly/q"]]
    features = core.build_features(
        _input(4, description=desc, created_at_s=created, urls=urls, url_titles=[[]] * 4)
    )
    raw = features.raw
    f = {name: raw[:, i].tolist() for i, name in enumerate(core.FEATURES)}
    assert f["duplicate_description"] == [1, 1, 0, 0]
    assert f["created_batch"] == [2, 2, 2, 0]
    assert f["duplicate_url"] == [1, 1, 0, 0]
    assert f["url_shortener"] == [0, 0, 0, 1] and f["url_provided"] == [1, 1, 0, 1]


def test_selection_drops_constant_and_collinear_features() -> None:
    rng = np.random.default_rng(1)
    m = rng.normal(size=(200, len(core.FEATURES)))
    m[:, 1] = 2 * m[:, 0] + 1e-6 * rng.normal(size=200)  # followings ~ followers
    m[:, 5] = 0.0  # profanity_url_title constant
    sel = core.select_features(m, threshold=0.9)
    assert "followings" in sel.dropped and "with followers" in sel.dropped["followings"]
    assert sel.dropped["profanity_url_title"] == "constant"
    assert "followers" in sel.selected and len(sel.selected) == len(core.FEATURES) - 2
    assert sel.correlations["followers~followings"] == pytest.approx(1.0, abs=1e-4)


def test_elbow_finds_the_knee() -> None:
    ks = list(range(2, 11))
    inertias = [1000, 500, 120, 100, 90, 82, 76, 71, 67]
    assert core.elbow(ks, inertias) == 4
    assert core.elbow([2, 3], [10, 5]) == 2


def test_cluster_names_from_behaviour_not_signatures() -> None:
    zero = {name: 0.0 for name in core.FEATURES}
    ref = core.Reference(
        {"repeated_targets": 1.0, "follow_burst": 4.0, "followings": 80.0,
         "early_follows": 0.3, "signup_burst": 20.0, "lockstep": 2.0},
        contributors=1000,
    )  # fmt: skip
    centroids = [
        {**zero, "repeated_targets": 12.0, "follow_burst": 9.0},
        {**zero, "follow_burst": 90.0, "followings": 300.0},
        {**zero, "lockstep": 12.0, "signup_burst": 15.0},
        # a shortener and swearing are what spam says, not what it does: not spam
        {**zero, "url_shortener": 1.0, "profanity_description": 1.0, "created_batch": 9.0},
        # automated-looking, but it uploads and earns followers: human
        {**zero, "follow_burst": 90.0, "tracks": 2.0, "organic_followers": 40.0},
        {**zero, "followers": 50_000.0, "tracks": 10.0},
        {**zero, "tracks": 4.0},
        {**zero, "followings": 40.0, "activity": 10.0},
        zero,
    ]
    medians = {name: 1.0 for name in core.FEATURES}
    assert core.name_clusters(centroids, medians, ref) == [
        "spam:churn", "spam:link", "spam:fake", "lurkers", "musicians", "superstars",
        "musicians-2", "fans", "lurkers-2",
    ]  # fmt: skip


def test_reference_ceilings_come_from_contributing_users() -> None:
    raw = np.zeros((200, len(core.FEATURES)))
    f = {name: i for i, name in enumerate(core.FEATURES)}
    raw[:100, f["activity"]] = 1.0
    raw[:100, f["follow_burst"]] = np.arange(100)  # contributors: up to 99 in 72 h
    raw[100:, f["follow_burst"]] = 500.0  # non-contributors do not set the ceiling
    ref = core.reference(raw, quantile=0.99)
    assert ref.contributors == 100
    assert ref.ceiling["follow_burst"] == pytest.approx(98.01)
    assert core.looks_automated(raw, ref).tolist() == [False] * 100 + [True] * 100
    few = core.reference(raw[95:], min_contributors=50)
    assert few.ceiling["follow_burst"] == float("inf")


def test_rule_baseline_reads_signatures() -> None:
    raw = np.zeros((4, len(core.FEATURES)))
    f = {name: i for i, name in enumerate(core.FEATURES)}
    raw[0, f["url_shortener"]] = 1
    raw[1, f["created_batch"]] = 3
    raw[2, f["follow_multiplicity"]] = 2
    assert baselines.rule_labels(raw) == ["link", "fake", "churn", None]


def test_supervised_reference_is_out_of_fold() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 4))
    truth = x[:, 0] > 1.0
    flags, proba = baselines.supervised_reference(x, truth, folds=5)
    assert flags.shape == truth.shape and ((proba >= 0) & (proba <= 1)).all()
    assert (flags == truth).mean() > 0.9
    with pytest.raises(ValueError, match="too few"):
        baselines.supervised_reference(x[:10], truth[:10], folds=5)


def test_too_few_users_is_a_value_error() -> None:
    features = core.build_features(_input(5))
    with pytest.raises(ValueError, match="scorable users"):
        core.fit(features, FAST)
