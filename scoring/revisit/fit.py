"""Fitting Phoenix-R: wavelet candidates, Levenberg-Marquardt-style least squares, MDL.

The search follows the paper. Shock candidates come from the Ricker CWT
(``wavelet.candidates``) of what the current model does not explain yet, largest volume
first; each round tries the largest few, each try placing one new shock (fitted alone
to the unexplained part from a few start windows) and then refitting *all* parameters
jointly with ``scipy.optimize.least_squares`` (trust-region reflective, a bounded
Levenberg-Marquardt, :func:`.solve.solve`). The model's cost is its minimum
description length in bits (:mod:`.mdl`).

A series with plays always gets one shock. Further shocks are added greedily while the
cost stays within ``tolerance`` (5 %, the paper's stop) of the cheapest model seen so
far, so a shock that costs a little more than it saves does not end the search early;
the cheapest model (the MDL choice) is returned. The periodic term (one or several
candidate periods) is tried on the first shock and kept only if it lowers the cost,
and decided again on the chosen shocks. ``S(0)`` is a real parameter, fitted in log
space like ``beta * S0``, ``omega`` (log) and ``gamma`` (logit), so no parameter is
frozen on a grid. Each new shock is tried both with its bump's own decay and as a
plateau (a recovery slower than the series), the shape of most real series after a
rise, which least squares does not reach from a decaying start.

Why one shock is often chosen on real daily series: a shock costs about 210-245 bits,
so it must shrink the residual variance by a factor ``2**(2 * bits / n)``, a cut of
40-44 % at n = 573 and 14-16 % at n = 2006. A better-fitting multi-shock model that
does not clear that bar is rejected by design; e.g. three shocks fit gangnam_style to
RMSE 503k against the MDL choice's 542k (two shocks) and cost ~210 bits more. The
audience/revisit split is profiled (:class:`ShareProfile`) because plays alone do not
identify it (the level's plays are left out of it: nobody is modelled behind them).

Beyond the paper (:class:`Options`): a persistent background level fitted with the
shocks (a sum of shocks alone decays to nothing, so its level at a forecast's origin
was a compromise with the distant past), and residuals optionally on a
variance-stabilised scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from scoring.revisit import wavelet
from scoring.revisit.mdl import data_bits, model_bits
from scoring.revisit.model import (
    SHOCK_WIDTH,
    FloatArray,
    Period,
    Shock,
    decode_level,
    decode_period,
    decode_shocks,
    encode_level,
    encode_shock,
    level_index,
    periodic_factor,
    simulate_batch,
)
from scoring.revisit.solve import LOWER, UPPER, Scale, solve, stabilised

TOLERANCE = 0.05
# The shortest series we fit: the support of the smallest Ricker wavelet (10 * width 1).
MIN_POINTS = 10
MAX_SHOCKS = 12
# Each round refits with each of the largest few candidates and keeps the cheapest, so
# one poorly placed candidate does not end the search by itself.
TRIES_PER_ROUND = 2
# A new shock must start more than this many windows from every kept shock.
MIN_SEPARATION = 2
# Bumps start where the unexplained series first rises above this share of the peak.
ONSET_SHARE = 0.05
# Plays per infected individual over an infection (omega / gamma) along which the
# audience/revisit split is profiled: revisit shares from about 0 to about 0.99.
SHARE_PROFILE = (0.01, 0.1, 1.0, 10.0, 100.0)
# The split is reported only if every model with the fit's popularity puts it within
# this spread.
SHARE_SPREAD = 0.2
# The level's first guess: this quantile of the observed plays (a floor under the
# shocks; the joint fits move it).
LEVEL_QUANTILE = 10.0
# The residual variance floor on the log scale (counts' rounding is negligible there).
LOG_FLOOR = 1e-8


class FitError(ValueError):
    """The series cannot be fitted (the message explains why, for the track's row)."""


def _revisit_share(pop: FloatArray, aud: FloatArray) -> float | None:
    total = float(np.sum(pop))
    if total <= 0:
        return None
    return float(1.0 - np.clip(np.sum(aud) / total, 0.0, 1.0))


@dataclass(frozen=True)
class ShareProfile:
    """How well the data constrain the audience/revisit split.

    Plays alone do not tell few viewers who come back often from many who come once:
    scaling a shock's population by ``c`` (``S0 * c``, ``beta / c``, ``omega / c``, and
    ``c`` infected where it had one) leaves its popularity curve exactly as it was and
    moves ``omega / gamma``, hence the audience, by ``1 / c``. Only the model's
    convention that a shock starts from one infected individual picks one point of
    that family, and an optimiser can satisfy the convention with a near-critical
    shock of a handful of infected who play thousands of times (revisit share ~1), or
    the reverse. The profile lists the revisit share of the equal-popularity models at
    each ``omega / gamma`` of ``SHARE_PROFILE``; ``identified`` only if they span less
    than ``SHARE_SPREAD``. Pinning the split needs audience data (unique listeners),
    which play counters do not give.
    """

    revisit_share_range: tuple[float, float]
    identified: bool
    points: list[dict[str, float]]

    def as_dict(self) -> dict[str, object]:
        """JSON-ready profile (stored with the fit)."""
        return {
            "revisit_share_range": [float(v) for v in self.revisit_share_range],
            "identified": self.identified,
            "points": self.points,
        }


@dataclass
class Fit:
    """A fitted Phoenix-R model of one series."""

    shocks: list[Shock]
    period: Period | None
    n_points: int
    fitted: FloatArray
    audience: FloatArray
    rmse: float
    cost_bits: float
    theta: FloatArray = field(repr=False)
    starts: NDArray[np.int64] = field(repr=False)
    history: list[dict[str, float]] = field(default_factory=list)
    share_profile: ShareProfile | None = None
    level: float | None = None
    """The persistent background level, plays per window (before the periodic term)."""
    background: FloatArray | None = field(default=None, repr=False)
    """The level's plays per window (periodic term applied), part of ``fitted``."""

    @property
    def n_shocks(self) -> int:
        """The MDL-chosen number of shocks."""
        return len(self.shocks)

    @property
    def background_share(self) -> float | None:
        """Share of the fitted plays that are the persistent level's (None without one)."""
        total = float(np.sum(self.fitted))
        if self.background is None or total <= 0:
            return None
        return float(np.sum(self.background)) / total

    @property
    def fitted_revisit_share(self) -> float | None:
        """Share of the shocks' fitted plays that are revisits (None if they play nothing).

        The level's plays are left out: the model says nothing of who plays them. This
        is the point estimate of the fitted parameters, whether or not the data pin it
        down; :attr:`revisit_share` is the figure to report.
        """
        shocks = self.fitted if self.background is None else self.fitted - self.background
        return _revisit_share(shocks, self.audience)

    @property
    def share_identified(self) -> bool:
        """Whether the data pin the audience/revisit split down (see :class:`ShareProfile`)."""
        return self.share_profile is None or self.share_profile.identified

    @property
    def revisit_share(self) -> float | None:
        """Share of plays that are revisits; None when the split is not identifiable."""
        return self.fitted_revisit_share if self.share_identified else None

    @property
    def audience_share(self) -> float | None:
        """Share of plays by first-time viewers; None when the split is not identifiable."""
        share = self.revisit_share
        return None if share is None else 1.0 - share

    def predict(self, n: int) -> FloatArray:
        """The fitted model's popularity over windows ``0 .. n - 1`` (extrapolating)."""
        pop, _ = simulate_batch(
            self.theta[None, :],
            self.starts,
            n,
            self.period.period if self.period else None,
            level=self.level is not None,
        )
        return np.asarray(pop[0], dtype=np.float64)


def validate(y: FloatArray) -> FloatArray:
    """Check a per-window play series (NaN = gap); raise :class:`FitError` if unusable."""
    y = np.asarray(y, dtype=np.float64)
    valid = np.isfinite(y)
    n_valid = int(valid.sum())
    if n_valid < MIN_POINTS:
        raise FitError(
            f"series too short: {n_valid} observed windows, the smallest wavelet needs {MIN_POINTS}"
        )
    if np.any(y[valid] < 0):
        first = int(np.flatnonzero(valid & (y < 0))[0])
        raise FitError(f"negative plays at window {first}: counters must not decrease")
    if not np.any(y[valid] > 0):
        raise FitError("all-zero series: no plays to model")
    return y


def _fill_gaps(y: FloatArray) -> FloatArray:
    valid = np.isfinite(y)
    if valid.all():
        return y
    idx = np.arange(len(y))
    return np.interp(idx, idx[valid], y[valid])


def _profile_share(
    theta: FloatArray, starts: NDArray[np.int64], n: int, period: float | None
) -> ShareProfile:
    """Revisit shares of the models whose popularity equals the fit's (see ShareProfile).

    Along ``S0 * c``, ``beta / c``, ``omega / c`` (``c`` times the infected) a shock's
    plays are unchanged, its new infections ``N`` grow ``c``-fold and each first-time
    viewer's chance ``1 - exp(-omega / gamma)`` changes with ``omega / gamma = x / c``;
    so with every shock moved to ``omega / gamma = x`` the audience is
    ``sum_k (1 - e^-x) * (x_k / x) * N_k``. No refit is needed: the popularity is the
    same by construction.
    """
    k = len(starts)
    # The level's plays are not the shocks': the split is of the shocks' plays.
    theta = theta[: level_index(k, period)]
    points: list[dict[str, float]] = []
    pop, fitted = simulate_batch(theta[None, :], starts, n, period, with_audience=True)
    assert fitted is not None
    total = float(np.sum(pop))
    if k == 0 or total <= 0:
        return ShareProfile((float("nan"), float("nan")), False, points)
    sh = theta[: SHOCK_WIDTH * k].reshape(k, SHOCK_WIDTH)
    x_fit = np.exp(sh[:, 3]) * (1.0 + np.exp(-sh[:, 2]))
    infected = np.zeros(k)
    for j in range(k):
        one = np.concatenate([sh[j], theta[SHOCK_WIDTH * k :]])[None, :]
        _, aud = simulate_batch(one, starts[j : j + 1], n, period, with_audience=True)
        assert aud is not None
        infected[j] = float(np.sum(aud)) / max(-math.expm1(-x_fit[j]), 1e-300)
    # The fit itself is one of the equal-popularity models.
    shares = [float(1.0 - np.clip(np.sum(fitted) / total, 0.0, 1.0))]
    for x in SHARE_PROFILE:
        audience = float(np.sum(-math.expm1(-x) * (x_fit / x) * infected))
        share = float(1.0 - np.clip(audience / total, 0.0, 1.0))
        shares.append(share)
        points.append({"omega_over_gamma": x, "revisit_share": share})
    lo, hi = min(shares), max(shares)
    return ShareProfile((lo, hi), hi - lo <= SHARE_SPREAD, points)


def _initial_shock(resid: FloatArray, cand: wavelet.Candidate) -> Shock:
    """A starting guess for a shock at ``cand`` from the unexplained part of the series."""
    n = len(resid)
    lo = cand.start
    hi = min(n, cand.peak + cand.width + 1)
    seg = np.clip(resid[lo:hi], 0.0, None)
    peak = lo + int(np.argmax(seg)) if seg.size and seg.max() > 0 else cand.peak
    height = float(max(resid[peak], 1e-3))
    # A shock cannot play before it starts, but starting early costs nothing (a larger
    # S0 delays the rise): start at the bump's onset when that is before peak - width.
    smooth = np.convolve(resid, np.ones(max(cand.width // 4, 1)) / max(cand.width // 4, 1), "same")
    quiet = np.flatnonzero(smooth[: peak + 1] < ONSET_SHARE * height)
    onset = int(quiet[-1]) if quiet.size else 0
    lo = min(lo, onset)
    # Decay: windows until the residual falls below height / e after the peak.
    after = resid[peak:]
    below = np.flatnonzero(after < height / math.e)
    tau = float(below[0]) if below.size else float(max(cand.width, 1))
    # Noise crosses the threshold early; a bump is at least half its wavelet wide.
    tau = max(tau, cand.width / 2.0)
    gamma = float(np.clip(1.0 / max(tau, 1.0), 0.02, 0.9))
    tail = int(min(n, peak + 5 * max(tau, 1.0) + 1))
    volume = float(np.clip(resid[lo:tail], 0.0, None).sum())
    volume = max(volume, height)
    s0 = max(volume * gamma, 10.0)
    rise = max(peak - lo, 1)
    rate = gamma + math.exp(math.log(s0) / rise) - 1.0
    rate = float(min(max(rate, gamma + 1e-3), math.exp(2.5)))
    omega = max(volume * gamma / s0, 1e-6)
    return Shock(start=lo, s0=s0, beta=rate / s0, gamma=gamma, omega=omega)


def _shapes(target: FloatArray, guess: Shock, start: int) -> list[Shock]:
    """Starting shapes for a shock at ``start``: the bump's own decay, and a plateau.

    Least squares does not cross from a decaying bump to a level that persists (the
    decay rate's valley between them is flat for the data's early windows), so a shock
    whose plays stay up, as most real series' do after their rise, is tried as one: a
    recovery rate slower than the series is long, its level the median of the target
    after the guessed peak.
    """
    n = len(target)
    spike = Shock(start, guess.s0, guess.beta, guess.gamma, guess.omega)
    after = target[min(start + 1, n - 1) :]
    after = after[np.isfinite(after)]
    level = float(np.median(after)) if after.size else 0.0
    if level <= 0:
        return [spike]
    gamma = float(min(guess.gamma, 0.1 / max(n - start, 1)))
    s0 = max(level / max(guess.omega, 1e-6), 10.0)
    omega = level / s0
    # The same initial growth rate as the bump guess: it was read off the rise.
    rate = float(min(max(guess.beta * guess.s0, gamma + 1e-3), math.exp(2.5)))
    return [spike, Shock(start, s0, rate / s0, gamma, omega)]


def _place_shock(
    target: FloatArray, guess: Shock, cand: wavelet.Candidate, taken: NDArray[np.int64]
) -> tuple[FloatArray, int]:
    """Fit one shock alone to ``target`` from several start windows; the best one.

    The start window is an integer the optimiser cannot move, and a shock started too
    late cannot rise in time while one started too early rises too slowly from its single
    first infected; so the bump's onset, the paper's ``peak - width``, the midpoint to
    the peak and two points before the onset are each tried.
    """
    peak = max(cand.peak, guess.start)
    rise = peak - guess.start
    # A shock's first windows (one infected, a handful of plays) are invisible in the
    # data, so its true start usually lies before the visible onset.
    options = {
        guess.start,
        cand.start,
        (guess.start + peak) // 2,
        max(0, guess.start - rise // 2),
        max(0, guess.start - rise),
    }
    best: tuple[float, FloatArray, int] | None = None
    for start in sorted(options):
        if start < 0 or np.any(np.abs(taken - start) <= MIN_SEPARATION):
            continue
        for shape in _shapes(target, guess, start):
            theta, resid = solve(target, encode_shock(shape), np.array([start]), None)
            sse = float(np.sum(resid[np.isfinite(resid)] ** 2))
            if best is None or sse < best[0]:
                best = (sse, theta, start)
    if best is None:
        theta, _ = solve(target, encode_shock(guess), np.array([guess.start]), None)
        return theta, guess.start
    return best[1], best[2]


def _initial_period(
    y: FloatArray, theta: FloatArray, starts: NDArray[np.int64], period: float, level: bool
) -> FloatArray:
    """Shock parameters plus a periodic term (and the level) started from a grid of
    amplitude x phase; ``theta`` holds the shocks (and the level).

    The sine's phase makes the cost multimodal, so least squares alone from phase 0
    often settles on the wrong one; the grid (cheap: the shocks are simulated once)
    picks the start. Plays are rescaled so the modulation keeps the mean level.
    """
    n = len(y)
    valid = np.isfinite(y)
    base = simulate_batch(theta[None, :], starts, n, level=level)[0][0]
    t_axis = np.arange(n, dtype=np.float64)
    best: tuple[float, float, float, float] | None = None
    for amp in (0.1, 0.2, 0.35, 0.5, 0.7):
        for phase in np.arange(0.0, period, period / 16.0):
            factor = 1.0 - 0.5 * amp * (np.sin(2.0 * np.pi * (t_axis + phase) / period) + 1.0)
            lift = 1.0 / float(np.mean(factor))
            sse = float(np.sum((base[valid] * factor[valid] * lift - y[valid]) ** 2))
            if best is None or sse < best[0]:
                best = (sse, amp, float(phase), lift)
    assert best is not None
    _, amp, phase, lift = best
    k = len(starts)
    shocks = theta[: SHOCK_WIDTH * k].copy()
    # Raise every shock's omega by the lift (omega is the 4th coordinate, in log space),
    # and the level with them.
    shocks[SHOCK_WIDTH - 1 :: SHOCK_WIDTH] += math.log(lift)
    tail = theta[SHOCK_WIDTH * k :] + math.log(lift)
    return np.concatenate([shocks, [math.log(amp / (1.0 - amp)), phase], tail])


def _cost(
    resid: FloatArray, theta: FloatArray, k: int, n_points: int, with_period: bool, options: Options
) -> float:
    s0 = np.exp(np.clip(theta[0 : SHOCK_WIDTH * k : SHOCK_WIDTH], LOWER[0], UPPER[0]))
    bits = model_bits(k, n_points, with_period, s0, options.level)
    return bits + data_bits(resid, LOG_FLOOR if options.residuals_on == "log" else 1.0 / 12.0)


@dataclass(frozen=True)
class Options:
    """How the model is fitted: the MDL search's limits and the model's extensions.

    ``level``: a persistent background level beside the shocks (fitted jointly with
    them, 64 bits in the MDL cost). ``residuals_on``: the scale of every joint fit's
    residuals and of the MDL cost's: raw plays (the paper's), or a variance-stabilised
    one (:mod:`.solve`: ``sqrt`` for Poisson-like counts, ``log`` for noise that grows
    with the level). The defaults were chosen at the development origins of
    ``benchmarks/revisit.py``, never on its held-out windows.
    """

    tolerance: float = TOLERANCE
    max_shocks: int = MAX_SHOCKS
    level: bool = True
    residuals_on: Scale = "plays"


def fit(
    y: FloatArray,
    period: float | tuple[float, ...] | None = None,
    *,
    options: Options = Options(),
    profile_share: bool = True,
) -> Fit:
    """Fit Phoenix-R to a per-window play series (NaN marks a gap).

    ``period`` (in windows, e.g. 7 for daily or 24 for hourly series; several may be
    given) makes a periodic term a candidate: it is tried once the first shock is in and
    kept, for the rest of the search, only if it lowers the MDL cost. With
    ``profile_share`` the audience/revisit split is profiled (:class:`ShareProfile`) and
    reported only if the data identify it. Raises :class:`FitError` for series that
    cannot be modelled.
    """
    # The matrices are small (n x 4K): a multi-threaded BLAS only adds thread hand-offs
    # (a 4x slow-down measured on a busy 2-core machine), so fit on one BLAS thread.
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit(y, period, options, profile_share)


@dataclass(frozen=True)
class _Model:
    """One candidate model of the search: its MDL cost and what it is made of."""

    cost: float
    theta: FloatArray
    starts: NDArray[np.int64]
    period: float | None
    resid: FloatArray  # fitted minus observed, at the valid points


@dataclass(frozen=True)
class _Series:
    """The series being fitted, in the forms every step reads."""

    y: FloatArray
    valid: NDArray[np.bool_]
    filled: FloatArray  # gaps filled, for the wavelet candidates
    options: Options

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def n_valid(self) -> int:
        return int(self.valid.sum())

    def simulate(
        self, theta: FloatArray, starts: NDArray[np.int64], period: float | None
    ) -> FloatArray:
        level = self.options.level
        pop: FloatArray = simulate_batch(theta[None, :], starts, self.n, period, level=level)[0][0]
        return pop

    def residuals(self, fitted: FloatArray) -> FloatArray:
        """Fitted minus observed at the valid windows, on the scale the fit works on."""
        on = self.options.residuals_on
        if on == "plays":
            return fitted[self.valid] - self.y[self.valid]
        return stabilised(fitted[self.valid], on) - stabilised(self.y[self.valid], on)

    def solve(
        self, theta0: FloatArray, starts: NDArray[np.int64], period: float | None
    ) -> tuple[FloatArray, FloatArray]:
        opts = self.options
        return solve(
            self.y, theta0, starts, period, level=opts.level, residuals_on=opts.residuals_on
        )

    def cost(self, resid: FloatArray, theta: FloatArray, k: int, period: float | None) -> float:
        return _cost(resid, theta, k, self.n_valid, period is not None, self.options)


def _periods(period: float | tuple[float, ...] | None, n_valid: int) -> tuple[float, ...]:
    """The candidate periods: those the series covers at least twice."""
    if period is None:
        return ()
    given = period if isinstance(period, tuple) else (period,)
    return tuple(float(p) for p in given if n_valid >= 2 * float(p))


def _next_shock(s: _Series, m: _Model, history: list[dict[str, float]]) -> _Model | None:
    """One round of the search: the best model with one more shock, or None.

    Candidates are what the model does not explain yet, largest volume first. Each is
    fitted in two stages: the new shock alone against what is unexplained (4 cheap
    parameters, from a few start windows), then everything jointly from there; the
    joint fit is kept only if it is better, so a new shock never worsens the old ones.
    """
    current = s.simulate(m.theta, m.starts, m.period)
    unexplained = s.filled - current
    k = len(m.starts)
    tried = 0
    best: _Model | None = None
    for cand in wavelet.candidates(np.clip(unexplained, 0.0, None)):
        if tried >= TRIES_PER_ROUND:
            break
        guess = _initial_shock(unexplained, cand)
        # Two shocks starting (nearly) together are one shock to the data.
        if np.any(np.abs(m.starts - guess.start) <= MIN_SEPARATION):
            continue
        tried += 1
        alone, start = _place_shock(s.y - current, guess, cand, m.starts)
        starts = np.append(m.starts, start)
        theta = np.concatenate([m.theta[: SHOCK_WIDTH * k], alone, m.theta[SHOCK_WIDTH * k :]])
        resid = s.residuals(s.simulate(theta, starts, m.period))
        joint, resid_joint = s.solve(theta, starts, m.period)
        if np.sum(resid_joint**2) < np.sum(resid**2):
            theta, resid = joint, resid_joint
        cost = s.cost(resid, theta, len(starts), m.period)
        history.append({"shocks": float(len(starts)), "cost_bits": cost})
        if best is None or cost < best.cost:
            best = _Model(cost, theta, starts, m.period, resid)
    return best


def _with_period(
    s: _Series, m: _Model, periods: tuple[float | None, ...], history: list[dict[str, float]]
) -> _Model:
    """``m`` with each of ``periods`` (None: no periodic term) refitted; the cheapest."""
    k = len(m.starts)
    # The shocks (and the level) without the periodic term.
    plain = np.concatenate([m.theta[: SHOCK_WIDTH * k], m.theta[level_index(k, m.period) :]])
    best = m
    for per in periods:
        if per == m.period:
            continue
        level = s.options.level
        theta0 = plain if per is None else _initial_period(s.y, plain, m.starts, per, level)
        theta, resid = s.solve(theta0, m.starts, per)
        cost = s.cost(resid, theta, k, per)
        history.append({"shocks": float(k), "cost_bits": cost, "period": per or 0.0})
        if cost < best.cost:
            best = _Model(cost, theta, m.starts, per, resid)
    return best


def _search(s: _Series, periods: tuple[float, ...], max_shocks: int, tolerance: float,
            history: list[dict[str, float]]) -> _Model:  # fmt: skip
    """Add shocks while the MDL cost stays within ``tolerance`` of the cheapest seen.

    A series with plays has at least one shock (the empty model predicts none, so on
    short series it can out-bid one shock's 256 parameter bits); after that, the
    paper's 5 % tolerance. The periodic term is decided on the first shock, so later
    shocks are not spent on the periodic pattern. The cheapest model is returned.
    """
    empty = np.zeros(0)
    if s.options.level:
        floor = float(np.percentile(s.y[s.valid], LEVEL_QUANTILE))
        empty = np.array([encode_level(floor)])
    none = np.zeros(0, np.int64)
    resid = s.residuals(s.simulate(empty, none, None))
    m = _Model(s.cost(resid, empty, 0, None), empty, none, None, resid)
    history.append({"shocks": 0.0, "cost_bits": m.cost})
    best = m
    while len(m.starts) < max_shocks:
        grown = _next_shock(s, m, history)
        if grown is None:
            break
        first = len(m.starts) == 0
        if not first and grown.cost > best.cost + tolerance * abs(best.cost):
            break
        if len(grown.starts) == 1 and periods:
            grown = _with_period(s, grown, periods, history)
        m = grown
        if first or m.cost < best.cost:
            best = m
    return best


def _fit(
    y: FloatArray,
    period: float | tuple[float, ...] | None,
    options: Options,
    profile_share: bool,
) -> Fit:
    y = validate(y)
    s = _Series(y, np.isfinite(y), _fill_gaps(y), options)
    periods = _periods(period, s.n_valid)
    history: list[dict[str, float]] = []
    m = _search(s, periods, options.max_shocks, options.tolerance, history)
    if periods and len(m.starts):
        # The periodic term was decided on the first shock alone, whose misfit can hide
        # a weekly (daily) pattern or fake one; decide it again on the chosen shocks.
        m = _with_period(s, m, (None, *periods), history)
    pop, aud = simulate_batch(
        m.theta[None, :], m.starts, s.n, m.period, with_audience=True, level=options.level
    )
    assert aud is not None
    k = len(m.starts)
    fitted_period = (
        None if m.period is None else decode_period(m.theta[SHOCK_WIDTH * k :], m.period)
    )
    level = decode_level(m.theta, k, m.period) if options.level else None
    background = None
    if level is not None:
        # The level under the periodic term, as the fitted curve carries it.
        background = np.full(s.n, level)
        if (p := fitted_period) is not None:
            background *= periodic_factor(
                np.array([p.amplitude]), np.array([p.phase]), p.period, s.n
            )[0]
    return Fit(
        shocks=decode_shocks(m.theta, m.starts),
        period=fitted_period,
        n_points=s.n,
        fitted=pop[0],
        audience=aud[0],
        rmse=float(np.sqrt(np.mean((pop[0][s.valid] - y[s.valid]) ** 2))),
        cost_bits=m.cost,
        theta=m.theta,
        starts=m.starts,
        history=history,
        share_profile=_profile_share(m.theta, m.starts, s.n, m.period) if profile_share else None,
        level=level,
        background=background,
    )
