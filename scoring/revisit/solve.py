"""The least-squares core of the Phoenix-R fit: residuals, a batched Jacobian, bounds.

:func:`solve` fits every parameter of a fixed model structure (shock starts, period,
level) from a start with ``scipy.optimize.least_squares`` (trust-region reflective, a
bounded Levenberg-Marquardt), on plays scaled to at most 1.

With ``stabilise`` the residuals are taken after Anscombe's variance-stabilising
transform ``2 * sqrt(plays + 3/8)``: play counts are Poisson-like, their spread grows
with their level, and unweighted least squares lets the few largest windows (a
shock's peak) decide every parameter, the level at the end of the series included.
On the transformed scale each window's noise is about the same, so the quiet
windows where a forecast starts count as much as the peak.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import least_squares

from scoring.revisit.model import LEVEL_LOG_RANGE, FloatArray, simulate_batch
from scoring.revisit.model import jacobian as model_jacobian

MAX_NFEV = 120
FD_STEP = 1e-6
# Bounds per shock in the optimiser's coordinates: S0 >= 1 (it starts with one infected
# individual), growth rate, logit gamma and log omega kept where floats stay finite.
LOWER = np.array([0.0, -30.0, -20.0, -40.0])
UPPER = np.array([40.0, 3.0, 20.0, 40.0])
# Anscombe's offset: 2 * sqrt(x + 3/8) has variance ~1 for Poisson counts x.
ANSCOMBE = 3.0 / 8.0
Scale = Literal["plays", "sqrt", "log"]
"""What residuals are measured on: raw plays, Anscombe's square root (Poisson noise),
or ``log1p`` (noise proportional to the level, as large real counters show)."""


def stabilised(plays: FloatArray, scale: Scale) -> FloatArray:
    """Plays on the variance-stabilised ``scale`` (``sqrt`` or ``log``)."""
    p = np.maximum(plays, 0.0)
    out = 2.0 * np.sqrt(p + ANSCOMBE) if scale == "sqrt" else np.log1p(p)
    return np.asarray(out, dtype=np.float64)


def _slope(plays: FloatArray, scale: Scale) -> FloatArray:
    """The derivative of :func:`stabilised` at ``plays``."""
    p = np.maximum(plays, 0.0)
    out = 1.0 / np.sqrt(p + ANSCOMBE) if scale == "sqrt" else 1.0 / (1.0 + p)
    return np.asarray(out, dtype=np.float64)


class Problem:
    """Residuals and a batched forward-difference Jacobian for one model structure."""

    def __init__(
        self,
        y: FloatArray,
        starts: NDArray[np.int64],
        period: float | None,
        scale: float,
        *,
        level: bool = False,
        residuals_on: Scale = "plays",
    ) -> None:
        self.valid = np.isfinite(y)
        self.starts = starts
        self.period = period
        self.level = level
        self.on = residuals_on
        self.n = len(y)
        # On a stabilised scale residuals are in noise units already.
        self.scale = scale if residuals_on == "plays" else 1.0
        observed = y[self.valid]
        plain = residuals_on == "plays"
        self.y = observed / scale if plain else stabilised(observed, residuals_on)

    def _plays(self, thetas: FloatArray) -> FloatArray:
        pop, _ = simulate_batch(thetas, self.starts, self.n, self.period, level=self.level)
        return pop[:, self.valid]

    def residuals(self, theta: FloatArray) -> FloatArray:
        """Fitted minus observed at the observed windows (scaled, or stabilised)."""
        plays = self._plays(theta[None, :])[0]
        fitted = plays / self.scale if self.on == "plays" else stabilised(plays, self.on)
        return np.asarray(fitted - self.y, dtype=np.float64)

    def jacobian(self, theta: FloatArray) -> FloatArray:
        """The residuals' forward-difference Jacobian, all columns in one batch."""
        steps = FD_STEP * np.maximum(1.0, np.abs(theta))
        plays, jac = model_jacobian(theta, self.starts, self.n, self.period, steps, self.level)
        jac = jac[self.valid]
        if self.on == "plays":
            return np.asarray(jac / self.scale, dtype=np.float64)
        return np.asarray(jac * _slope(plays[self.valid], self.on)[:, None], dtype=np.float64)


def bounds(k: int, period: float | None, level: bool = False) -> tuple[FloatArray, FloatArray]:
    """Lower and upper bounds of ``k`` shocks' parameters (then the periodic term's and
    the level's)."""
    lower = np.tile(LOWER, k)
    upper = np.tile(UPPER, k)
    if period is not None:
        lower = np.append(lower, [-20.0, -np.inf])
        upper = np.append(upper, [20.0, np.inf])
    if level:
        lower = np.append(lower, LEVEL_LOG_RANGE[0])
        upper = np.append(upper, LEVEL_LOG_RANGE[1])
    return lower, upper


def _least_squares(
    prob: Problem, theta0: FloatArray, lower: FloatArray, upper: FloatArray
) -> FloatArray:
    theta0 = np.clip(theta0, lower + 1e-9, upper - 1e-9)
    res = least_squares(
        prob.residuals,
        theta0,
        jac=prob.jacobian,
        bounds=(lower, upper),
        method="trf",
        x_scale="jac",
        max_nfev=MAX_NFEV,
        xtol=1e-8,
        ftol=1e-8,
    )
    return np.asarray(res.x, dtype=np.float64)


def _scale(y: FloatArray) -> float:
    finite = y[np.isfinite(y)]
    return float(max(np.max(np.abs(finite)), 1.0))


def solve(
    y: FloatArray,
    theta0: FloatArray,
    starts: NDArray[np.int64],
    period: float | None,
    *,
    level: bool = False,
    residuals_on: Scale = "plays",
) -> tuple[FloatArray, FloatArray]:
    """Least-squares fit from ``theta0``; returns parameters and the residuals in y units
    (on the stabilised scale unless ``residuals_on`` is ``plays``)."""
    prob = Problem(y, starts, period, _scale(y), level=level, residuals_on=residuals_on)
    lower, upper = bounds(len(starts), period, level)
    theta = _least_squares(prob, theta0, lower, upper)
    return theta, prob.residuals(theta) * prob.scale
