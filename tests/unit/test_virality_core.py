"""scoring.virality numeric cores: cascades, labels, SANSNET, CrowdCast, baselines."""

from __future__ import annotations

import math

import igraph as ig
import networkx as nx
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.virality import baselines, crowdcast, evaluate, pipeline, sansnet, synthetic
from scoring.virality.cascades import from_events, split_by_track
from scoring.virality.labels import (
    DegenerateTraining,
    Grid,
    Labels,
    best_cut,
    best_threshold,
    false_alarm_shift,
    labels_from_truth,
    make_labels,
)


@pytest.fixture(scope="module")
def world() -> synthetic.SyntheticWorld:
    """A small synthetic world shared by the tests of this module."""
    return synthetic.generate(4000, n_users=4000, mean_follows=15.0, seed=3, horizon_hours=48.0)


def _world_inputs(world: synthetic.SyntheticWorld) -> baselines.Inputs:
    """The world's cascades on a 48-hour grid of hours, viral at 10 shares."""
    c = world.cascades
    grid = Grid(1.0, 48.0)
    return baselines.Inputs(
        cascades=c, labels=make_labels(c, 10, 48.0), grid=grid, sizes=c.size_matrix(grid.times)
    )


def test_from_events_sorts_dedups_and_drops_unknown() -> None:
    c = from_events(
        [10, 20],
        [1, 2],
        event_tracks=[20, 10, 10, 10, 99, 10],
        event_users=[5, 7, 6, 7, 8, 9],
        event_hours=[1.0, 3.0, 2.0, 1.5, 0.5, -1.0],
        observed_hours=[48.0, 10.0],
    )
    # Track 10: user 7 twice (first at 1.5 h kept), user 6 at 2.0; the -1 h share and
    # the unknown track's share are dropped.
    assert c.offsets.tolist() == [0, 2, 3]
    assert c.users.tolist() == [7, 6, 5]
    assert c.times.tolist() == [1.5, 2.0, 1.0]
    assert c.size_matrix(np.array([1.0, 1.5, 2.0])).tolist() == [[0, 1, 2], [1, 1, 1]]
    assert c.virality_times(2).tolist() == [2.0, math.inf]
    sub = c.subset(np.array([1]))
    assert sub.track_ids.tolist() == [20] and sub.users.tolist() == [5]


def test_labels_censor_young_cascades() -> None:
    c = from_events([1, 2, 3], [9, 9, 9], [1, 1, 2], [4, 5, 6], [1.0, 2.0, 1.0], [48, 48, 5])
    lab = make_labels(c, threshold=2, horizon_hours=48.0)
    assert lab.viral.tolist() == [True, False, False]
    # Track 3 is only 5 hours old and not viral yet: unknown, not negative.
    assert lab.labeled.tolist() == [True, True, False]
    truth = labels_from_truth(c, [True, False, True], 2, 48.0)
    assert truth.viral_hours[2] == 48.0  # viral per the truth, threshold not observed


def test_split_by_track_is_disjoint_and_complete() -> None:
    train, test = split_by_track(100, 0.3, seed=1)
    assert len(set(train) & set(test)) == 0 and len(train) + len(test) == 100


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 6), st.booleans()), min_size=2, max_size=40),
    st.sampled_from(["balanced", "f1"]),
)
def test_best_threshold_matches_brute_force(rows: list[tuple[int, bool]], criterion: str) -> None:
    scores = np.array([r[0] for r in rows], dtype=float)
    pos = np.array([r[1] for r in rows])
    cut = best_threshold(scores, pos, criterion)
    if pos.all() or not pos.any():
        assert math.isnan(cut)
        return

    def cost(c: float) -> float:
        pred = scores >= c
        tp, fp = (pred & pos).sum(), (pred & ~pos).sum()
        if criterion == "balanced":
            return float((pos.sum() - tp) / pos.sum() + fp / (~pos).sum())
        return float(-2 * tp / (pred.sum() + pos.sum()))

    candidates = [*np.unique(scores), scores.max() + 1]
    assert cost(cut) == pytest.approx(min(cost(c) for c in candidates))
    # The reported cost is the one the cut reaches.
    assert best_cut(scores, pos, criterion)[1] == pytest.approx(cost(cut))


def test_collapsed_risk_table_gives_nearly_the_beta_of_one_row_per_interval(
    world: synthetic.SyntheticWorld,
) -> None:
    from lifelines import CoxTimeVaryingFitter

    c = world.cascades.subset(np.arange(600))
    grid = Grid(2.0, 48.0)
    lab = make_labels(c, 10, 48.0)
    sizes = c.size_matrix(grid.times)
    table = sansnet.risk_table(sizes, lab, c, grid)
    expanded = table.loc[table.index.repeat(table["weight"].astype(int))].copy()
    expanded["weight"] = 1.0
    expanded["id"] = np.arange(len(expanded))
    betas = []
    for frame in (table, expanded):
        fitter = CoxTimeVaryingFitter()
        fitter.fit(
            pd.DataFrame(frame),
            id_col="id",
            event_col="event",
            start_col="start",
            stop_col="stop",
            weights_col="weight",
        )
        betas.append(float(fitter.params_["x"]))
    assert len(table) < len(expanded)
    # Efron's tie correction sees a weighted row as one tied death, not w of them:
    # the collapsed fit differs from the expanded one by a few percent, no more.
    assert betas[0] == pytest.approx(betas[1], rel=0.05)


def test_sansnet_boundary_is_monotone_and_recalls_before_virality(
    world: synthetic.SyntheticWorld,
) -> None:
    c = world.cascades
    grid = Grid(1.0, 48.0)
    train, test = split_by_track(c.n, 0.3, seed=0)
    model = sansnet.fit(c.subset(train), make_labels(c.subset(train), 10, 48.0), grid)
    assert model.beta > 0  # bigger cascades are closer to the threshold
    assert np.all(np.diff(model.boundary) <= 1e-12)  # s*_t is non-increasing
    tc = c.subset(test)
    lab = make_labels(tc, 10, 48.0)
    sizes = tc.size_matrix(grid.times)
    surv = model.survival(sizes)
    assert np.all((surv >= 0) & (surv <= 1))
    # Along the observed path the survival is a survival function: non-increasing.
    path = sansnet.fit(c.subset(train), make_labels(c.subset(train), 10, 48.0), grid, form="path")
    assert np.all(np.diff(path.survival(sizes), axis=1) <= 1e-12)
    _, decisions = model.decide(sizes)
    viral = np.nonzero(lab.viral)[0]
    at = grid.index_at(lab.viral_hours[viral] - 1.0)
    ok = at >= 0
    assert ok.sum() >= 5
    # One hour before virality most viral cascades are flagged, far more than the
    # share of flagged cascades that never go viral.
    recall = decisions[viral[ok], at[ok]].mean()
    fallout = decisions[~lab.viral][:, 5].mean()
    assert recall > 0.5 and recall > 3 * fallout
    hours = model.predicted_hours_to_viral(sizes)
    finite = np.isfinite(hours)
    assert np.all(hours[finite] >= grid.times[0])


def test_sansnet_refuses_a_single_class(world: synthetic.SyntheticWorld) -> None:
    c = world.cascades
    with pytest.raises(DegenerateTraining, match="no training cascade reached"):
        sansnet.fit(c, make_labels(c, 10**6, 48.0), Grid(1.0, 48.0))
    young = from_events([1, 2], [1, 1], [1, 1, 2], [5, 6, 7], [0.5, 1.0, 0.2], [3.0, 3.0])
    with pytest.raises(DegenerateTraining, match="no fully observed non-viral"):
        sansnet.fit(young, make_labels(young, 2, 48.0), Grid(1.0, 48.0))


def test_activity_parents_pick_the_latest_earlier_followee() -> None:
    # Track by artist 1: user 2 at 1 h, user 3 at 2 h, user 4 at 3 h, user 5 at 4 h.
    c = from_events([100], [1], [100] * 4, [2, 3, 4, 5], [1.0, 2.0, 3.0, 4.0], [48.0])
    follower = np.array([4, 4, 3, 5])
    followee = np.array([2, 3, 9, 4])
    follow_at = np.array([0.0, 0.0, 0.0, 10.0])  # 5 followed 4 only after sharing
    parents = crowdcast.activity_parents(c, follower, followee, follow_at, np.array([0.0]))
    assert parents.tolist() == [1, 1, 3, 1]
    static = crowdcast.activity_parents(c, follower, followee, None, None)
    assert static.tolist() == [1, 1, 3, 4]


def test_pagerank_matches_networkx() -> None:
    rng = np.random.default_rng(0)
    src, dst = rng.integers(1, 60, 400), rng.integers(1, 60, 400)
    keep = src != dst
    users, rank = crowdcast.pagerank(src[keep], dst[keep])
    g = nx.DiGraph()
    g.add_edges_from(zip(src[keep].tolist(), dst[keep].tolist(), strict=True))
    expected = nx.pagerank(g, alpha=0.85)
    assert rank == pytest.approx([expected[int(u)] for u in users], abs=1e-6)


def test_average_distance_estimate_on_a_scale_free_graph() -> None:
    import random

    random.seed(5)
    g = ig.Graph.Barabasi(3000, 1)  # a preferential-attachment tree
    users = np.arange(1, 3000)
    parents = np.array([e[1] if e[0] == i else e[0] for i, e in enumerate(g.get_edgelist(), 1)])
    report = crowdcast.DistanceReport()
    n, d = crowdcast.tree_features(0, users, parents, min_nodes_estimate=30, report=report)
    exact = g.average_path_length(directed=False)
    assert n == 3000
    summary = report.summary()
    if summary["graphs_with_scale_free_fit"]:
        assert summary["compared"] == 1
        assert d == pytest.approx(math.log(math.log(3000)) / math.log(report_beta(g) - 1), rel=1e-9)
    else:
        assert d == pytest.approx(exact)


def report_beta(g: ig.Graph) -> float:
    """The exponent the estimate used (same call as the module)."""
    return float(ig.power_law_fit(g.degree(), method="discrete", p_precision=0.5).alpha)


def test_small_graphs_are_measured_exactly() -> None:
    users = np.array([2, 3, 4])
    parents = np.array([1, 2, 2])
    n, d = crowdcast.tree_features(1, users, parents, min_nodes_estimate=30)
    # Path 1-2, 2-3, 2-4: distances 1,2,2,1,1,2 over 6 pairs.
    assert n == 4 and d == pytest.approx(9 / 6)


def test_crowdcast_score_formula(world: synthetic.SyntheticWorld) -> None:
    c = world.cascades.subset(np.arange(300))
    g = world.graph
    users, rank = crowdcast.pagerank(g.follower, g.followee)
    lookup = crowdcast.RankLookup(users, rank)
    parents = crowdcast.activity_parents(c, g.follower, g.followee, None, None)
    grid = np.array([6.0, 48.0])
    f = crowdcast.features(c, parents, lookup, grid, measured=np.array([True, True]))
    i = int(np.argmax(c.final_sizes()))
    lo, hi = c.offsets[i], c.offsets[i + 1]
    assert f.node_count[i, 1] == hi - lo + 1
    assert f.pagerank_sum[i, 1] == pytest.approx(
        lookup(np.array([c.artists[i]]))[0] + lookup(c.users[lo:hi]).sum()
    )
    assert f.score[i, 1] == pytest.approx(
        f.node_count[i, 1] * f.average_distance[i, 1] / f.pagerank_sum[i, 1]
    )
    assert np.all(f.score[c.final_sizes() == 0] == 0)
    top = crowdcast.top_k(c.track_ids, f.score[:, 1], 5)
    assert top[0] == c.track_ids[np.argmax(f.score[:, 1])]


def test_sliding_window_graph_holds_only_the_recent_shares() -> None:
    # Artist 1; a chain 2 (1 h) <- 3 (2 h) <- 4 (5 h) <- 5 (5.5 h), each following the last.
    c = from_events([7], [1], [7] * 4, [2, 3, 4, 5], [1.0, 2.0, 5.0, 5.5], [48.0])
    parents = crowdcast.activity_parents(c, np.array([3, 4, 5]), np.array([2, 3, 4]), None, None)
    assert parents.tolist() == [1, 2, 3, 4]
    lookup = crowdcast.RankLookup(np.array([1, 2, 3, 4, 5]), np.array([0.5, 0.1, 0.2, 0.3, 0.4]))
    grid = np.array([4.0, 6.0])
    every = np.array([True, True])
    whole = crowdcast.features(c, parents, lookup, grid, measured=every)
    # All shares at 6 h: the path 1-2-3-4-5, mean distance 20 / 10 pairs.
    assert whole.node_count[0].tolist() == [3, 5]
    assert whole.average_distance[0, 1] == pytest.approx(2.0)
    recent = crowdcast.features(c, parents, lookup, grid, window_hours=2.0, measured=every)
    # (4, 6]: users 4 and 5; 4's source (3) shared before the window, so 4 hangs from the
    # artist: the path 1-4-5, mean distance 4 / 3 pairs, rank of 1, 4 and 5 only.
    assert recent.node_count[0, 1] == 3
    assert recent.average_distance[0, 1] == pytest.approx(4 / 3)
    assert recent.pagerank_sum[0, 1] == pytest.approx(0.5 + 0.3 + 0.4)
    # (2, 4] holds no share: the artist alone, score 0.
    assert recent.node_count[0, 0] == 1 and recent.score[0, 0] == 0


def test_crowdcast_picks_the_window_that_separates_the_training_cascades() -> None:
    n = 40
    c = from_events(np.arange(n), np.zeros(n), [], [], [], np.full(n, 10.0))
    viral = np.arange(n) % 4 == 0
    labels = Labels(2, 10.0, np.where(viral, 10.0, np.inf), viral, np.ones(n, dtype=bool))
    grid = Grid(4.0, 8.0)  # viral at 10 h: both classes alive at 4 and 8 h
    rng = np.random.default_rng(0)
    noise = rng.random((n, 2))
    signal = viral[:, None] + 0.1 * noise
    data = baselines.Inputs(
        cascades=c,
        labels=labels,
        grid=grid,
        sizes=np.zeros((n, 2), dtype=np.int32),
        crowdcast=np.stack([noise, signal]),
        crowdcast_windows=(math.inf, 1.0),
    )
    model = baselines.build("crowdcast")
    model.fit(data)
    assert isinstance(model, baselines.ThresholdRanker)
    assert model.windows.tolist() == [1.0, 1.0]
    scores, cuts = model.decide(data)
    assert np.array_equal(scores, signal)
    assert np.array_equal(scores >= cuts[None, :], np.repeat(viral[:, None], 2, axis=1))


def test_seismic_kernel_integrates_to_one() -> None:
    ages = np.array([0.0, 1 / 24, 1.0, 1e30])
    integral = baselines.seismic_kernel_integral(ages, 5 / 60, 0.242)
    assert integral[0] == 0 and integral[-1] == pytest.approx(1.0, rel=1e-3)
    assert np.all(np.diff(integral) > 0)
    # Numerically integrate the kernel to one hour.
    s = np.linspace(1e-9, 1.0, 200_001)
    c = 1 / ((5 / 60) * (1 + 1 / 0.242))
    phi = np.where(s <= 5 / 60, c, c * (s / (5 / 60)) ** -1.242)
    assert integral[2] == pytest.approx(np.trapezoid(phi, s), rel=1e-3)


def _toy_labels(n_viral: int = 20, n_neg: int = 200, seed: int = 0) -> tuple[Labels, Grid]:
    """Viral cascades crossing at 5..30 hours, never-viral ones, on an hourly 48 h grid."""
    rng = np.random.default_rng(seed)
    n = n_viral + n_neg
    viral = np.zeros(n, dtype=bool)
    viral[:n_viral] = True
    hours = np.where(viral, rng.integers(5, 31, n).astype(float), np.inf)
    return Labels(10, 48.0, hours, viral, np.ones(n, dtype=bool)), Grid(1.0, 48.0)


def test_false_alarm_shift_keeps_the_budget_with_ties() -> None:
    lab, _ = _toy_labels()
    rng = np.random.default_rng(1)
    margins = rng.normal(size=(lab.viral.size, 48))
    margins[~lab.viral, :3] = 5.0  # 200 negatives tied at the top
    margins[~lab.viral][:, 3:] = rng.normal(size=(200, 45))
    for alpha in (0.0, 0.01, 0.1):
        tau = false_alarm_shift(margins, lab, alpha)
        fallout = (margins[~lab.viral] > tau).any(axis=1).mean()
        assert fallout <= alpha
    with pytest.raises(DegenerateTraining):
        false_alarm_shift(margins[lab.viral], _subset_labels(lab, lab.viral), 0.1)


def _subset_labels(lab: Labels, rows: np.ndarray) -> Labels:
    return Labels(
        lab.threshold, lab.horizon_hours, lab.viral_hours[rows], lab.viral[rows], lab.labeled[rows]
    )


def test_epa_oracle_beats_every_model_and_flagging_everything_earns_nothing(
    world: synthetic.SyntheticWorld,
) -> None:
    """EPA at a matched false-alarm rate: properties that make it a fair comparison."""
    data = _world_inputs(world)
    grid = data.grid
    lab = data.labels
    assert lab.n_viral >= 20
    runs = evaluate.cross_predict(data, ["sansnet", "nodecount", "szabo_huberman"], k=3)
    alpha = 0.02
    n, n_grid = data.sizes.shape
    # The oracle flags exactly the viral cascades, at the first decision time.
    oracle = np.zeros((n, n_grid), dtype=bool)
    oracle[lab.viral, :] = True
    best = evaluate.early_prediction(oracle, lab, grid.times)
    assert best["detection"]["fallout"] == 0.0
    for run in runs.values():
        assert run.matched, run.problems
        m = evaluate.early_prediction(run.matched[alpha], lab, grid.times)
        assert m["detection"]["fallout"] <= 2 * alpha + 0.01  # tuned on training folds
        assert m["epa_hours"] <= best["epa_hours"]
        assert m["epa_hours"] > 0  # real models do detect early at this budget
    # A model that flags everything: at its own point it leads on every viral cascade
    # (the lead a naive EPA would reward), at any budget below 1 it detects nothing.
    everything = np.ones((n, n_grid))
    naive = evaluate.early_prediction(everything >= 0, lab, grid.times)
    assert naive["epa_hours"] == pytest.approx(best["epa_hours"])
    assert naive["detection"]["fallout"] == 1.0
    tau = false_alarm_shift(everything, lab, alpha)
    penalized = evaluate.early_prediction(everything > tau, lab, grid.times)
    assert penalized["epa_hours"] == 0.0 and penalized["detection"]["recall"] == 0.0


def test_pairwise_advantage_counts_only_cascades_both_detect() -> None:
    lab, _ = _toy_labels(n_viral=3, n_neg=2)
    a = np.array([1.0, 2.0, np.nan, 1.0, np.nan])
    b = np.array([3.0, 2.0, 1.0, np.nan, 4.0])
    adv = evaluate.pairwise_advantage(a, b, lab)
    # Viral 0 and 1 are detected by both: A is 2 h earlier on one, tied on the other.
    assert adv["cascades"] == 2 and adv["mean_hours"] == 1.0
    assert adv["earlier_share"] == 0.5 and adv["later_share"] == 0.0


def test_followers_count_as_it_stood() -> None:
    graph = pipeline.Graph(
        np.array([1, 2, 2, 3, 1]),
        np.array([9, 9, 9, 9, 8]),
        np.array([0.0, 5.0, 1.0, 10.0, 3.0]),  # user 2 follows 9 twice: first at 1 h
    )
    users = np.array([9, 9, 9, 8, 7])
    assert graph.followers_count(users).tolist() == [3, 3, 3, 1, 0]
    at = np.array([0.5, 1.0, 20.0, 2.0, 5.0])
    assert graph.followers_count(users, at).tolist() == [1, 2, 3, 0, 0]


def test_pagerank_snapshots_ignore_later_follows() -> None:
    follower = np.array([1, 2, 3, 1])
    followee = np.array([2, 3, 1, 3])
    t = np.array([0.0, 0.0, 0.0, 200.0])  # 1 -> 3 comes after the first snapshot
    snaps = crowdcast.pagerank_snapshots(follower, followee, t, 10.0, 300.0, refresh_hours=168)
    early = from_events([1], [3], [1], [4], [1.0], [48.0])
    artist_early, _ = snaps.cascade_ranks(early, np.array([50.0]))
    artist_late, _ = snaps.cascade_ranks(early, np.array([350.0]))  # tables at 10, 178, 346
    users, rank = crowdcast.pagerank(follower[:3], followee[:3])
    assert artist_early[0] == pytest.approx(rank[users.tolist().index(3)])
    users, rank = crowdcast.pagerank(follower, followee)
    assert artist_late[0] == pytest.approx(rank[users.tolist().index(3)])
    assert artist_late[0] > artist_early[0]  # user 3 gained a follower by then
    # Uploads spread over fifteen years: the refresh stretches, the tables stay few.
    years = crowdcast.pagerank_snapshots(follower, followee, t, 0.0, 24.0 * 365 * 15)
    assert len(years.tables) == 32 and years.times[-1] >= 24.0 * 365 * 15


def test_sansnet_score_forms_and_pooled_hazard(world: synthetic.SyntheticWorld) -> None:
    c = world.cascades
    grid = Grid(1.0, 48.0)
    lab = make_labels(c, 10, 48.0)
    path = sansnet.fit(c, lab, grid)
    cond = sansnet.fit(c, lab, grid, form="conditional")
    assert cond.beta == pytest.approx(path.beta)
    stalled = np.full((1, 48), 8, dtype=np.int32)  # 8 shares at once, then nothing
    # Along the path the hazard of a cascade that never crossed keeps accumulating;
    # conditionally on being below the threshold it falls as attention fades.
    assert np.all(np.diff(path.cumulative_hazard(stalled)[0]) >= -1e-12)
    h = cond.cumulative_hazard(stalled)[0]
    assert h[-1] <= h[5]
    # The pooled hazard has the same total over each doubling group of hours, and
    # no zero inside a group that saw a crossing.
    raw = sansnet.fit(c, lab, grid, pooled_hazard=False)
    group = np.floor(np.log2(np.arange(48) + 1.0)).astype(int)
    assert np.all(path.baseline_hazard > 0) or np.any(raw.baseline_hazard == 0)
    for k in np.unique(group):
        cells = group == k
        assert np.ptp(path.baseline_hazard[cells]) < 1e-12
        if raw.baseline_hazard[cells].any():
            assert path.baseline_hazard[cells].min() > 0
    with_rate = sansnet.fit(c, lab, grid, rate_hours=6.0)
    assert with_rate.coef.shape == (2,) and with_rate.rate_steps == 6


def test_sansnet_survival_covariates_are_read_off_the_shares() -> None:
    sizes = np.array([[0, 2, 2, 2, 5, 5]], dtype=np.int32)
    times = np.arange(1.0, 7.0)
    start, now = sansnet.covariates(sizes, 2, gap=True, age_times=times)
    padded = np.array([0, 0, 2, 2, 2, 5, 5])
    since = np.array([0, 1, 0, 1, 2, 0, 1])  # intervals since the last share (or upload)
    recent = np.array([0, 0, 2, 2, 0, 3, 3])  # shares in the last two intervals
    hours = np.r_[0.0, times]
    expect = np.stack([np.log1p(padded), np.log1p(recent), np.log1p(since),
                       np.log1p(padded) * np.log1p(hours)], axis=1)  # fmt: skip
    np.testing.assert_allclose(start[0], expect[:-1])
    np.testing.assert_allclose(now[0], expect[1:])


def test_sansnet_chooses_its_covariates_on_the_training_cascades(
    world: synthetic.SyntheticWorld,
) -> None:
    data = _world_inputs(world)
    model = baselines.Sansnet()
    model.fit(data)
    chosen = model.chosen()
    # Every candidate was read (on halves of the training cascades) and the best kept.
    leads = chosen["selection_lead_hours"]
    assert isinstance(leads, dict)
    assert set(leads) == {str(cov) for cov in baselines.SANSNET_CANDIDATES}
    assert chosen["covariates"] == max(leads, key=lambda k: leads[k])
    assert model.model is not None
    cov = model.covariates
    assert model.model.coef.shape == (1 + bool(cov.rate_hours) + cov.gap + cov.age,)
    every = baselines.SansnetCovariates(rate_hours=6.0, gap=True, age=True)
    fixed = baselines.Sansnet(covariates=every, select=False)
    fixed.fit(data)
    assert fixed.model is not None and fixed.model.coef.shape == (4,)
    assert fixed.model.age and fixed.model.gap and fixed.model.rate_steps == 6
    assert fixed.selection == {}
    scores, cuts = fixed.decide(data)
    assert scores.shape == data.sizes.shape and cuts.shape == (48,)


def test_f_measure_interval_brackets_the_f_measure() -> None:
    from scoring.virality.evaluate import f_measure_ci, prf

    truth = np.zeros(400, dtype=bool)
    truth[:40] = True
    assert f_measure_ci(truth, truth) == [1.0, 1.0]
    pred = truth.copy()
    pred[30:40] = False  # 10 misses
    pred[100:110] = True  # 10 false alarms
    low, high = f_measure_ci(pred, truth) or (None, None)
    f = prf(pred, truth)["f_measure"]
    assert low is not None and high is not None
    assert low < f < high and low >= 0.0 and high <= 1.0
    assert f_measure_ci(pred[:1], truth[:1]) is None


def test_the_seismic_kernel_is_recovered_from_its_own_delays() -> None:
    # draw delays from the kernel by inverting its integral on a fine grid
    s0, theta = 0.5, 0.8
    grid = np.linspace(0.0, 5000.0, 2_000_001)
    cdf = baselines.seismic_kernel_integral(grid, s0, theta)
    u = np.random.default_rng(3).uniform(0.0, cdf[-1], 20_000)
    delays = np.interp(u, cdf, grid)
    got_s0, got_theta = baselines.fit_seismic_kernel(delays)
    assert got_theta == pytest.approx(theta, rel=0.15)
    assert 0.2 <= got_s0 <= 1.0  # on the grid of the delays' quantiles
    with pytest.raises(DegenerateTraining):
        baselines.fit_seismic_kernel(np.array([1.0, 2.0]))


def test_temporal_split_trains_on_earlier_uploads_only(world: synthetic.SyntheticWorld) -> None:
    """The later uploads are predicted by a model fitted on the earlier ones alone."""
    data = _world_inputs(world)
    c = data.cascades
    upload = np.random.default_rng(5).permutation(c.n).astype(float) // 2  # ties in pairs
    split = evaluate.temporal_split(upload, 0.3)
    test, train = np.flatnonzero(split == 0), np.flatnonzero(split == -1)
    assert set(np.unique(split)) == {-1, 0}
    assert upload[test].min() > upload[train].max()
    assert abs(test.size - 0.3 * c.n) <= 2
    runs = evaluate.cross_predict(data, ["nodecount"], split=split)
    run = runs["nodecount"]
    assert run.scores is not None and run.decisions is not None
    alone = baselines.build("nodecount")
    alone.fit(data.take(train))
    scores, _ = alone.decide(data.take(test))
    np.testing.assert_array_equal(run.scores[test], scores)
    assert not run.decisions[train].any()  # never predicted: trained on
    ev = pipeline.evaluate(data, {}, models=("nodecount",), split=split)
    assert ev.data.cascades.n == test.size
    assert ev.metrics["trained_only"] == train.size
    assert ev.metrics["viral"] == int(data.labels.viral[test].sum())
    with pytest.raises(ValueError, match="test_share"):
        evaluate.temporal_split(upload, 1.0)
