"""The linear state-space baseline: additive Holt-Winters with a damped trend.

This is the TemporalDynamics-style comparator for Phoenix-R: level, damped trend and
(optionally) an additive seasonal state of length ``period``, updated by exponential
smoothing. Smoothing weights are fitted by minimising the one-step-ahead squared error
(L-BFGS-B in logit space). Gaps (NaN) are skipped by the update: the state is carried
forward with its own prediction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class HoltWinters:
    """A fitted Holt-Winters model: weights, final state and in-sample predictions."""

    alpha: float
    beta: float
    phi: float
    gamma: float
    period: int | None
    level: float
    trend: float
    season: FloatArray
    one_step: FloatArray

    def forecast(self, horizon: int) -> FloatArray:
        """Predictions for the next ``horizon`` windows after the fitted series."""
        out = np.empty(horizon)
        damp = 0.0
        n = len(self.one_step)
        for h in range(1, horizon + 1):
            damp += self.phi**h
            s = self.season[(n + h - 1) % len(self.season)] if self.period else 0.0
            out[h - 1] = self.level + damp * self.trend + s
        return out


def _sigmoid(x: float) -> float:
    # exp(-x) overflows below x = -709, where L-BFGS-B's line search can probe; there
    # the sigmoid equals exp(x) to double precision.
    if x < -700.0:
        return math.exp(x)
    return 1.0 / (1.0 + math.exp(-x))


def _run(
    y: list[float], alpha: float, beta: float, phi: float, gamma: float, period: int | None
) -> tuple[float, float, list[float], list[float]]:
    """One pass of the smoother; returns final level, trend, season and predictions."""
    m = period or 1
    head = [v for v in y[: 2 * m] if not math.isnan(v)] or [0.0]
    level = head[0]
    trend = 0.0
    season = [0.0] * m
    preds: list[float] = []
    for t, obs in enumerate(y):
        s = season[t % m] if period else 0.0
        pred = level + phi * trend + s
        preds.append(pred)
        if math.isnan(obs):
            level, trend = level + phi * trend, phi * trend
            continue
        new_level = alpha * (obs - s) + (1.0 - alpha) * (level + phi * trend)
        trend = beta * (new_level - level) + (1.0 - beta) * phi * trend
        if period:
            season[t % m] = gamma * (obs - new_level) + (1.0 - gamma) * s
        level = new_level
    return level, trend, season, preds


def fit_holt_winters(y: FloatArray, period: int | None = 7) -> HoltWinters:
    """Fit the damped additive Holt-Winters model to ``y`` (NaN = gap)."""
    series = [float(v) for v in np.asarray(y, dtype=np.float64)]
    obs = np.asarray(series)
    ok = np.isfinite(obs)
    use_period = period if period and len(series) >= 2 * period else None

    def unpack(x: FloatArray) -> tuple[float, float, float, float]:
        # phi in (0.8, 1): the usual damping range, so long forecasts stay sane.
        return (
            _sigmoid(x[0]),
            _sigmoid(x[1]),
            0.8 + 0.2 * _sigmoid(x[2]),
            _sigmoid(x[3]) if use_period else 0.0,
        )

    def sse(x: FloatArray) -> float:
        a, b, f, g = unpack(x)
        _, _, _, preds = _run(series, a, b, f, g, use_period)
        err = np.asarray(preds)[ok] - obs[ok]
        return float(np.mean(err**2))

    starts = [np.array([0.0, -3.0, 2.0, -3.0]), np.array([2.0, -5.0, 0.0, -2.0])]
    best = None
    for x0 in starts:
        res = minimize(sse, x0, method="L-BFGS-B", options={"maxiter": 200})
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    a, b, f, g = unpack(np.asarray(best.x))
    level, trend, season, preds = _run(series, a, b, f, g, use_period)
    return HoltWinters(
        alpha=a,
        beta=b,
        phi=f,
        gamma=g,
        period=use_period,
        level=level,
        trend=trend,
        season=np.asarray(season),
        one_step=np.asarray(preds),
    )
