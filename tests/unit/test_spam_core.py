"""scoring.spam.core: features, selection, elbow, naming, and the fit on a simulated world."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.spam import KIND_OF_TRUTH, world_input
from scoring.spam import core
from simulator.world import World

FAST = core.SpamParams(k_max=15, per_class=400, max_iter=200)


def test_profanity_and_shorteners() -> None:
    assert core.has_profanity("FREE followers no scam fuck yeah")
    assert core.has_profanity("make $$$, f*cking easy money")
    assert core.has_profanity("xxx webcam")
    assert not core.has_profanity("Scunthorpe bass music")  # words, not substrings
    assert not core.has_profanity(None)
    assert core.is_shortener("https://bit.ly/abc") and core.is_shortener("www.tinyurl.com/x")
    assert not core.is_shortener("https://instagram.com/bit.ly")


def test_graph_features_reciprocity_and_multiplicity() -> None:
    users = np.array([1, 2, 3, 4], dtype=np.int64)
    src = np.array([1, 1, 2, 3], dtype=np.int64)
    dst = np.array([2, 3, 1, 1], dtype=np.int64)
    mult = np.array([1, 5, 1, 1], dtype=np.int64)
    recip, max_mult = core.graph_features(users, src, dst, mult)
    assert recip.tolist() == [1.0, 1.0, 1.0, 0.0]
    assert max_mult.tolist() == [5.0, 1.0, 1.0, 0.0]


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
        reciprocity=np.zeros(n),
        max_multiplicity=np.ones(n),
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


def test_cluster_names_from_centroids() -> None:
    zero = {name: 0.0 for name in core.FEATURES}
    centroids = [
        {**zero, "url_shortener": 1.0},
        {**zero, "created_batch": 12.0},
        {**zero, "follow_multiplicity": 3.0},
        {**zero, "followers": 50_000.0},
        {**zero, "tracks": 4.0},
        {**zero, "followings": 40.0, "activity": 10.0},
        {**zero, "followings": 30.0},
        zero,
    ]
    medians = {name: 1.0 for name in core.FEATURES}
    assert core.name_clusters(centroids, medians) == [
        "spam:link", "spam:fake", "spam:churn", "superstars", "musicians", "fans", "fans-2",
        "lurkers",
    ]  # fmt: skip


def test_too_few_users_is_a_value_error() -> None:
    features = core.build_features(_input(5))
    with pytest.raises(ValueError, match="scorable users"):
        core.fit(features, FAST)


def test_fit_on_a_simulated_world_finds_the_planted_spam() -> None:
    world = World.generate(seed=3, users=3000)
    inp, truth = world_input(world)
    features = core.build_features(inp)
    model = core.fit(features, FAST)
    truth = truth[features.scorable]
    precision, recall = core.precision_recall(model.is_spam, truth > 0)
    assert precision >= 0.95 and recall >= 0.95, (precision, recall, model.cluster_names)
    caught = np.flatnonzero(model.is_spam & (truth > 0))
    kinds_right = [model.kind[i] == KIND_OF_TRUTH[int(truth[i])] for i in caught]
    assert np.mean(kinds_right) >= 0.95
    assert model.ks[0] == 2 and model.k in model.ks
    assert 0.8 <= model.mlp_accuracy <= 1.0 and not math.isnan(model.mlp_accuracy)
    assert sum(model.cluster_sizes) == truth.shape[0]
    assert all(k is None for k, s in zip(model.kind, model.is_spam, strict=True) if not s)
