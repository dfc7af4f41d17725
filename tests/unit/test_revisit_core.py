"""Phoenix-R numeric core: forward model, wavelet candidates, MDL fitting, series, baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scoring.revisit import wavelet
from scoring.revisit.baseline import _sigmoid, fit_holt_winters
from scoring.revisit.fit import FitError, Options, fit
from scoring.revisit.forecast import anchored, forecast, rmse
from scoring.revisit.mdl import data_bits, log_star, model_bits
from scoring.revisit.model import Period, Shock, jacobian, pack, simulate, simulate_batch
from scoring.revisit.series import SeriesError, mark_outages, regularize
from scoring.revisit.solve import Problem, Scale


def _reference(shocks: list[Shock], n: int) -> tuple[np.ndarray, np.ndarray]:
    """The model's equations written out plainly, one shock at a time."""
    pop = np.zeros(n)
    aud = np.zeros(n)
    for sh in shocks:
        s, i = sh.s0, 1.0
        first = 1.0 - math.exp(-sh.omega / sh.gamma)
        for t in range(sh.start, n):
            pop[t] += sh.omega * i
            new = min(sh.beta * s * i, s)
            aud[t] += first * new
            s, i = s - new, i + new - sh.gamma * i
    return pop, aud


SHOCKS = [Shock(5, 2e4, 0.6 / 2e4, 0.15, 2.0), Shock(120, 8e3, 0.9 / 8e3, 0.08, 0.7)]


def test_simulation_matches_the_equations() -> None:
    pop, aud = simulate(SHOCKS, 300)
    ref_pop, ref_aud = _reference(SHOCKS, 300)
    np.testing.assert_allclose(pop, ref_pop, rtol=1e-10)
    np.testing.assert_allclose(aud, ref_aud, rtol=1e-10)
    assert np.all(pop[:5] == 0)
    # Over a shock's life the audience is at most the plays (omega/gamma >= 1 - e^-(omega/gamma)).
    assert 0 < aud.sum() < pop.sum()


def test_batch_rows_are_independent() -> None:
    theta, starts = pack(SHOCKS, None)
    other = theta.copy()
    other[0] += 0.5
    pop, _ = simulate_batch(np.stack([theta, other, theta]), starts, 200)
    np.testing.assert_array_equal(pop[0], pop[2])
    assert not np.allclose(pop[0], pop[1])


def test_period_term_modulates_between_one_and_one_minus_amplitude() -> None:
    base, _ = simulate(SHOCKS, 200)
    mod, _ = simulate(SHOCKS, 200, Period(period=7.0, amplitude=0.4, phase=1.0))
    ratio = mod[base > 0] / base[base > 0]
    assert ratio.max() <= 1.0 + 1e-12
    assert ratio.min() >= 0.6 - 1e-12
    assert ratio.max() - ratio.min() > 0.3


def test_ricker_cwt_finds_planted_bumps() -> None:
    t = np.arange(400, dtype=float)
    y = 1000 * np.exp(-0.5 * ((t - 100) / 6) ** 2) + 400 * np.exp(-0.5 * ((t - 300) / 15) ** 2)
    cands = wavelet.candidates(y + np.random.default_rng(0).normal(0, 5, t.size))
    peaks = [c.peak for c in cands[:2]]
    assert any(abs(p - 100) <= 3 for p in peaks)
    assert any(abs(p - 300) <= 5 for p in peaks)
    for c in cands:
        assert c.start == max(0, c.peak - c.width)
    assert [c.volume for c in cands] == sorted((c.volume for c in cands), reverse=True)


def test_ricker_is_the_mexican_hat() -> None:
    w = wavelet.ricker(101, 4.0)
    assert w.argmax() == 50
    assert abs(np.sum(w**2) - 1.0) < 1e-3  # unit energy
    assert w[50 + 4 * 2] < 0  # negative side lobes beyond one width


def test_mdl_pieces() -> None:
    assert log_star(1) == pytest.approx(math.log2(2.865064))
    assert log_star(16) > log_star(2) > log_star(1)
    assert model_bits(2, 500, False) - model_bits(1, 500, False) > 4 * 64
    # A shock adds its 4 reals, its start coded log*(n), and one more to count.
    one_more = model_bits(1, 500, False) - model_bits(0, 500, False)
    assert one_more == pytest.approx(4 * 64 + log_star(500) + log_star(2) - log_star(1))
    small, large = data_bits(np.ones(100)), data_bits(10 * np.ones(100))
    assert large - small == pytest.approx(100 * math.log2(10))


def _noisy(shocks: list[Shock], n: int, seed: int) -> np.ndarray:
    pop, _ = simulate(shocks, n)
    return np.random.default_rng(seed).poisson(pop).astype(float)


def test_fit_recovers_two_shocks_and_their_volumes() -> None:
    y = _noisy(SHOCKS, 400, 1)
    model = fit(y)
    assert model.n_shocks == 2
    truth, _ = simulate(SHOCKS, 400)
    assert rmse(model.fitted, truth) < 0.05 * truth.max()
    # Each shock must start before its true peak (early windows of a shock hold only a
    # handful of plays, so its exact first window is not identifiable).
    starts = sorted(s.start for s in model.shocks)
    peaks = [int(np.argmax(simulate([sh], 400)[0])) for sh in SHOCKS]
    assert starts[0] < peaks[0]
    assert SHOCKS[0].start < starts[1] < peaks[1]
    # Plays alone do not identify the audience/revisit split: reported as such, with the
    # range of equally fitting models, which holds the planted share.
    assert model.revisit_share is None and model.audience_share is None
    assert model.share_profile is not None and not model.share_profile.identified
    lo, hi = model.share_profile.revisit_share_range
    pop, aud = simulate(SHOCKS, 400)
    assert lo < 1.0 - aud.sum() / pop.sum() < hi
    assert model.fitted_revisit_share is not None and 0 < model.fitted_revisit_share < 1


def test_popularity_does_not_identify_the_audience() -> None:
    # c times the population, beta / c and omega / c, started early enough to reach c
    # infected at the original start: the same plays, a very different audience.
    sh = SHOCKS[0]
    c = 50.0
    growth = 1.0 + sh.beta * sh.s0 - sh.gamma
    early = sh.start + 40 - round(math.log(c) / math.log(growth))
    base = Shock(sh.start + 40, sh.s0, sh.beta, sh.gamma, sh.omega)
    scaled = Shock(early, sh.s0 * c, sh.beta / c, sh.gamma, sh.omega / c)
    pop1, aud1 = simulate([base], 400)
    pop2, aud2 = simulate([scaled], 400)
    assert rmse(pop2, pop1) < 0.02 * pop1.max()
    assert aud2.sum() / pop2.sum() > 5 * aud1.sum() / pop1.sum()


def test_the_level_adds_plays_that_never_decay() -> None:
    period = Period(period=7.0, amplitude=0.3, phase=2.0)
    base, aud = simulate(SHOCKS, 300, period)
    lifted, aud_lifted = simulate(SHOCKS, 300, period, level=40.0)
    factor = 1.0 - 0.15 * (np.sin(2.0 * np.pi * (np.arange(300) + 2.0) / 7.0) + 1.0)
    np.testing.assert_allclose(lifted - base, 40.0 * factor, rtol=1e-9)
    np.testing.assert_array_equal(aud, aud_lifted)  # nobody is modelled behind the level


def test_the_jacobian_has_the_level_and_period_columns() -> None:
    period = Period(period=7.0, amplitude=0.3, phase=2.0)
    theta, starts = pack(SHOCKS, period, 40.0)
    steps = 1e-6 * np.maximum(1.0, np.abs(theta))
    pop, jac = jacobian(theta, starts, 300, 7.0, steps, level=True)
    assert jac.shape == (300, theta.size)
    for q in range(theta.size):
        moved = theta.copy()
        moved[q] += steps[q]
        up = simulate_batch(moved[None, :], starts, 300, 7.0, level=True)[0][0]
        np.testing.assert_allclose(jac[:, q], (up - pop) / steps[q], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("residuals_on", ["sqrt", "log"])
def test_stabilised_residuals_have_their_exact_jacobian(residuals_on: Scale) -> None:
    theta, starts = pack(SHOCKS, None, 5.0)
    y = _noisy(SHOCKS, 300, 4) + 5.0
    prob = Problem(y, starts, None, float(y.max()), level=True, residuals_on=residuals_on)
    jac = prob.jacobian(theta)
    for q in range(theta.size):
        moved = theta.copy()
        moved[q] += 1e-6
        numeric = (prob.residuals(moved) - prob.residuals(theta)) / 1e-6
        np.testing.assert_allclose(jac[:, q], numeric, rtol=1e-3, atol=1e-4)


def test_fit_recovers_a_planted_level_under_a_shock() -> None:
    pop, _ = simulate(SHOCKS[:1], 400, level=30.0)
    y = np.random.default_rng(5).poisson(pop).astype(float)
    model = fit(y)
    assert model.n_shocks == 1
    assert model.level == pytest.approx(30.0, rel=0.15)
    background = model.background_share
    assert background is not None
    assert background == pytest.approx(30.0 * 400 / pop.sum(), rel=0.15)
    # The shocks alone decay: what is left at the end is the level.
    assert model.predict(800)[-1] == pytest.approx(30.0, rel=0.15)
    without = fit(y, options=Options(level=False))
    assert without.level is None and without.background_share is None
    scales: tuple[Scale, ...] = ("sqrt", "log")
    for on in scales:
        stabilised = fit(y, options=Options(residuals_on=on))
        assert stabilised.level == pytest.approx(30.0, rel=0.2)


def test_background_is_what_the_fit_holds_beyond_its_shocks() -> None:
    period = Period(period=7.0, amplitude=0.3, phase=2.0)
    pop, _ = simulate(SHOCKS[:1], 300, period, level=20.0)
    model = fit(np.random.default_rng(8).poisson(pop).astype(float), period=7.0)
    assert model.period is not None and model.background is not None
    shocks_only, _ = simulate(model.shocks, 300, model.period)
    np.testing.assert_allclose(model.background, model.fitted - shocks_only, rtol=1e-9)


def test_fit_handles_gaps_and_keeps_one_shock_for_one_shock() -> None:
    y = _noisy(SHOCKS[:1], 300, 2)
    y[50:60] = np.nan
    model = fit(y)
    assert model.n_shocks == 1
    assert np.isfinite(model.rmse)


@pytest.mark.parametrize(
    ("series", "reason"),
    [
        (np.zeros(100), "all-zero"),
        (np.ones(5), "too short"),
        (np.r_[np.ones(50), -3.0, np.ones(50)], "negative"),
    ],
)
def test_bad_series_are_explained(series: np.ndarray, reason: str) -> None:
    with pytest.raises(FitError, match=reason):
        fit(series)


def test_forecast_predicts_the_decay() -> None:
    y = _noisy(SHOCKS[:1], 200, 3)
    fc = forecast(y, 20)
    truth, _ = simulate(SHOCKS[:1], 200)
    assert fc.predicted.shape == (20,)
    assert fc.rmse < 0.1 * truth.max()


def test_the_forecast_carries_the_level_the_fit_misses_at_the_origin() -> None:
    curve = np.linspace(100.0, 10.0, 40)  # the fit over 30 prefix windows and 10 beyond
    prefix = curve[:30] + 25.0  # the series sits 25 above it where the forecast starts
    prefix[:20] = curve[:20]  # (not in the distant past)
    prefix[27] = np.nan  # a gap is skipped
    assert anchored(curve, prefix) == pytest.approx(curve[30:] + 25.0)
    low = anchored(curve, curve[:30] - 60.0)  # never below zero plays
    assert low.min() == 0.0 and low[0] == pytest.approx(max(curve[30] - 60.0, 0.0))


def test_regularize_interpolates_and_marks_gaps_and_recounts() -> None:
    day = 86400.0
    t = np.array([0, 0.5, 1.0, 2.0, 2.5, 6.0, 7.0]) * day
    c = np.array([0, 50, 100, 200, 150, 450, 550], dtype=float)
    s = regularize(t, c, 86400)
    assert s.plays[0] == pytest.approx(100)
    assert s.plays[1] == pytest.approx(100)
    assert np.isnan(s.plays[2])  # the recount happened inside this day
    assert np.isnan(s.plays[3:6]).all()  # 3.5 days without a snapshot
    assert s.plays[6] == pytest.approx(100)
    assert any("recount" in n for n in s.notes)


def test_outages_inside_a_level_are_unknown_but_starts_troughs_and_ends_are_not() -> None:
    rng = np.random.default_rng(3)
    level = rng.poisson(1000.0, 400).astype(float)
    level[:40] = rng.poisson(2.0, 40)  # a series' start: nothing before it rose
    level[200:219] = rng.poisson(10.0, 19)  # the counter was not read for 19 windows
    level[380:] = rng.poisson(3.0, 20)  # a fall at the end: no level after it to compare
    y, notes = mark_outages(level)
    assert np.isnan(y[200:219]).all()
    assert np.isfinite(np.delete(y, np.arange(200, 219))).all()
    assert len(notes) == 1 and "windows 200..218" in notes[0]
    # A deep weekly trough (amplitude 0.9 of a sine) is a pattern, not an outage.
    t = np.arange(400)
    weekly = 1000.0 * (1.0 - 0.45 * (np.sin(2 * np.pi * t / 7.0) + 1.0))
    assert mark_outages(weekly)[1] == []
    # A quiet track's zero windows are count noise, not an outage.
    quiet = rng.poisson(3.0, 400).astype(float)
    assert mark_outages(quiet)[1] == []


def test_regularize_refuses_negative_and_single_snapshots() -> None:
    with pytest.raises(SeriesError, match="negative"):
        regularize(np.array([0.0, 3600.0, 7200.0]), np.array([1.0, -1.0, 3.0]), 3600)
    with pytest.raises(SeriesError, match="at least 2"):
        regularize(np.array([0.0]), np.array([1.0]), 3600)


def test_holt_winters_tracks_a_seasonal_level() -> None:
    t = np.arange(300)
    y = 100 + 20 * np.sin(2 * np.pi * t / 7) + np.random.default_rng(4).normal(0, 2, t.size)
    hw = fit_holt_winters(y, 7)
    assert rmse(hw.one_step[30:], y[30:]) < 5
    assert rmse(hw.forecast(14), 100 + 20 * np.sin(2 * np.pi * np.arange(300, 314) / 7)) < 8


def test_holt_winters_weights_survive_extreme_line_search_steps() -> None:
    # L-BFGS-B can probe logit weights below -709, where exp(-x) overflows.
    assert _sigmoid(-800.0) == 0.0
    assert _sigmoid(-700.5) == pytest.approx(math.exp(-700.5))
    assert _sigmoid(0.0) == 0.5


def test_periodic_term_chosen_among_candidate_periods() -> None:
    n = 24 * 30
    pop, _ = simulate([Shock(3, 5e4, 0.3 / 5e4, 0.01, 2.0)], n, Period(24.0, 0.5, 5.0))
    y = np.random.default_rng(6).poisson(pop).astype(float)
    model = fit(y, (24.0, 168.0))
    assert model.period is not None
    assert model.period.period == 24.0
    assert model.period.amplitude == pytest.approx(0.5, abs=0.1)
    assert model.n_shocks == 1


def test_short_series_with_plays_gets_a_shock() -> None:
    # 30 windows: one shock's 256 parameter bits are close to what it saves, but a
    # series with plays is never left with the empty model.
    y = _noisy(SHOCKS[:1], 30, 7)
    model = fit(y)
    assert model.n_shocks >= 1
    assert model.rmse < np.sqrt(np.mean(y**2))
