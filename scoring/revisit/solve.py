"""The least-squares core of the Phoenix-R fit: residuals, a batched Jacobian, bounds.

:func:`solve` fits every parameter of a fixed model structure (shock starts, period)
from a start with ``scipy.optimize.least_squares`` (trust-region reflective, a bounded
Levenberg-Marquardt), on plays scaled to at most 1.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import least_squares

from scoring.revisit.model import FloatArray, simulate_batch
from scoring.revisit.model import jacobian as model_jacobian

MAX_NFEV = 120
FD_STEP = 1e-6
# Bounds per shock in the optimiser's coordinates: S0 >= 1 (it starts with one infected
# individual), growth rate, logit gamma and log omega kept where floats stay finite.
LOWER = np.array([0.0, -30.0, -20.0, -40.0])
UPPER = np.array([40.0, 3.0, 20.0, 40.0])


class Problem:
    """Residuals and a batched forward-difference Jacobian for one model structure."""

    def __init__(
        self, y: FloatArray, starts: NDArray[np.int64], period: float | None, scale: float
    ) -> None:
        self.valid = np.isfinite(y)
        self.y = y[self.valid] / scale
        self.starts = starts
        self.period = period
        self.n = len(y)
        self.scale = scale

    def _pred(self, thetas: FloatArray) -> FloatArray:
        pop, _ = simulate_batch(thetas, self.starts, self.n, self.period)
        return pop[:, self.valid] / self.scale

    def residuals(self, theta: FloatArray) -> FloatArray:
        """Fitted minus observed plays (scaled) at the observed windows."""
        return np.asarray(self._pred(theta[None, :])[0] - self.y, dtype=np.float64)

    def jacobian(self, theta: FloatArray) -> FloatArray:
        """The residuals' forward-difference Jacobian, all columns in one batch."""
        steps = FD_STEP * np.maximum(1.0, np.abs(theta))
        _, jac = model_jacobian(theta, self.starts, self.n, self.period, steps)
        return np.asarray(jac[self.valid] / self.scale, dtype=np.float64)


def bounds(k: int, period: float | None) -> tuple[FloatArray, FloatArray]:
    """Lower and upper bounds of ``k`` shocks' parameters (and the periodic term's)."""
    lower = np.tile(LOWER, k)
    upper = np.tile(UPPER, k)
    if period is not None:
        lower = np.append(lower, [-20.0, -np.inf])
        upper = np.append(upper, [20.0, np.inf])
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
    y: FloatArray, theta0: FloatArray, starts: NDArray[np.int64], period: float | None
) -> tuple[FloatArray, FloatArray]:
    """Least-squares fit from ``theta0``; returns parameters and the residuals in y units."""
    prob = Problem(y, starts, period, _scale(y))
    lower, upper = bounds(len(starts), period)
    theta = _least_squares(prob, theta0, lower, upper)
    return theta, prob.residuals(theta) * prob.scale
