"""The Phoenix-R forward model: a sum of SIR-with-revisits shocks, in discrete time.

Each shock ``k`` starts at window ``start_k`` with ``S = S0_k`` susceptible, one
infected individual and nobody recovered, then evolves per window as

    new(t)   = min(beta * S(t) * I(t), S(t))
    S(t + 1) = S(t) - new(t)
    I(t + 1) = I(t) + new(t) - gamma * I(t)

Infected individuals view at rate ``omega`` per window, so the shock's plays are
``omega * I(t)``; popularity is the sum over shocks plus, optionally, a persistent
background *level* (plays per window that never decay: the catalogue listening a
track keeps once its shocks are spent, which a sum of decaying shocks cannot hold),
optionally scaled by a periodic factor ``1 - amplitude/2 * (sin(2 pi (t + phase) /
period) + 1)`` (the SpikeM form the paper uses). Of the shocks' plays, those by
first-time viewers (the *audience*) are ``(1 - exp(-omega / gamma)) * beta * S * I``;
the rest are revisits. The level's plays are neither: who plays them is not modelled.

The recurrence is sequential in time, so it runs as one compiled (numba) loop over
windows per shock, for a whole batch of parameter vectors at once: a finite-difference
Jacobian of every parameter is one call instead of one per parameter, and the cost is
``O(batch * shocks * T)`` scalar steps, linear in the series' length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

# Parameters per shock in the optimiser's unconstrained coordinates:
# log S0, log(beta * S0) (the initial growth rate), logit gamma, log omega.
SHOCK_WIDTH = 4
# The periodic term: logit amplitude, phase (in windows, unbounded, periodic).
PERIOD_WIDTH = 2
# The background level: log plays per window, last in the parameter vector.
LEVEL_WIDTH = 1
LEVEL_LOG_RANGE = (-30.0, 40.0)


@dataclass(frozen=True)
class Shock:
    """One SIR-with-revisits shock in natural units."""

    start: int
    s0: float
    beta: float
    gamma: float
    omega: float

    def as_dict(self) -> dict[str, float | int]:
        """JSON-ready parameters (the ``revisit_fits.shocks`` element)."""
        return {
            "start": int(self.start),
            "s0": float(self.s0),
            "beta": float(self.beta),
            "gamma": float(self.gamma),
            "omega": float(self.omega),
        }


@dataclass(frozen=True)
class Period:
    """The periodic modulation: amplitude in [0, 1], phase in windows, period in windows."""

    period: float
    amplitude: float
    phase: float

    def as_dict(self) -> dict[str, float]:
        """JSON-ready parameters (the ``revisit_fits.period`` value)."""
        return {
            "period": float(self.period),
            "amplitude": float(self.amplitude),
            "phase": float(self.phase),
        }


def _sigmoid(x: FloatArray) -> FloatArray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: float) -> float:
    return float(np.log(p / (1.0 - p)))


def encode_shock(shock: Shock) -> FloatArray:
    """A shock's natural parameters in the optimiser's unconstrained coordinates."""
    gamma = min(max(shock.gamma, 1e-9), 1.0 - 1e-9)
    return np.array(
        [
            np.log(shock.s0),
            np.log(shock.beta * shock.s0),
            _logit(gamma),
            np.log(shock.omega),
        ]
    )


def decode_shocks(theta: FloatArray, starts: NDArray[np.int64]) -> list[Shock]:
    """Shocks from unconstrained coordinates (``4 * len(starts)`` leading values)."""
    out = []
    for k, start in enumerate(starts):
        ls0, lr, lg, lw = theta[SHOCK_WIDTH * k : SHOCK_WIDTH * (k + 1)]
        s0 = float(np.exp(ls0))
        out.append(
            Shock(
                start=int(start),
                s0=s0,
                beta=float(np.exp(lr)) / s0,
                gamma=float(_sigmoid(np.asarray(lg))),
                omega=float(np.exp(lw)),
            )
        )
    return out


def decode_period(theta: FloatArray, period: float) -> Period:
    """The periodic term from its two unconstrained coordinates."""
    return Period(
        period=period,
        amplitude=float(_sigmoid(np.asarray(theta[0]))),
        phase=float(theta[1] % period),
    )


def level_index(k: int, period: float | None) -> int:
    """Where the level's coordinate sits in a parameter vector of ``k`` shocks."""
    return SHOCK_WIDTH * k + (PERIOD_WIDTH if period is not None else 0)


def decode_level(theta: FloatArray, k: int, period: float | None) -> float:
    """The background level (plays per window) from a parameter vector that has one."""
    lo, hi = LEVEL_LOG_RANGE
    return float(np.exp(np.clip(theta[level_index(k, period)], lo, hi)))


def encode_level(plays: float) -> float:
    """A level of ``plays`` per window in the optimiser's coordinate."""
    lo, hi = LEVEL_LOG_RANGE
    return float(np.clip(np.log(max(plays, 1e-300)), lo, hi))


def encode_period(p: Period) -> FloatArray:
    """The periodic term in unconstrained coordinates."""
    amp = min(max(p.amplitude, 1e-6), 1.0 - 1e-6)
    return np.array([_logit(amp), p.phase])


@numba.njit(cache=True, nogil=True)
def _sir_kernel(
    beta: FloatArray,
    gamma: FloatArray,
    s0: FloatArray,
    omega: FloatArray,
    starts: NDArray[np.int64],
    n: int,
    with_audience: bool,
) -> tuple[FloatArray, FloatArray]:
    """Compiled recurrence: ``(batch, shocks)`` parameters -> popularity, audience."""
    batch, k = beta.shape
    pop = np.zeros((batch, n))
    aud = np.zeros((batch, n) if with_audience else (1, 1))
    for b in range(batch):
        for j in range(k):
            s = s0[b, j]
            i = 1.0
            bj = beta[b, j]
            keep = 1.0 - gamma[b, j]
            w = omega[b, j]
            first = 1.0 - np.exp(-w / gamma[b, j])
            for t in range(max(starts[j], 0), n):
                pop[b, t] += w * i
                new = bj * s * i
                if new > s:
                    new = s
                if with_audience:
                    aud[b, t] += first * new
                s -= new
                i = keep * i + new
    return pop, aud


def simulate_batch(
    theta: FloatArray,
    starts: NDArray[np.int64],
    n: int,
    period: float | None = None,
    *,
    with_audience: bool = False,
    level: bool = False,
) -> tuple[FloatArray, FloatArray | None]:
    """Popularity for a batch of parameter vectors.

    ``theta`` is ``(batch, 4 * K [+ 2] [+ 1])``: per shock the unconstrained
    coordinates, then the periodic term's two when ``period`` is given, then the log
    level with ``level``. Returns popularity ``(batch, n)`` and, with
    ``with_audience``, the audience part ``(batch, n)`` (first-time plays).
    """
    theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    batch = theta.shape[0]
    k = len(starts)
    pop = np.zeros((batch, n))
    aud = np.zeros((batch, n)) if with_audience else None
    if k:
        sh = theta[:, : SHOCK_WIDTH * k].reshape(batch, k, SHOCK_WIDTH)
        # Clip in log space so a wild optimiser step overflows nothing.
        s0 = np.exp(np.clip(sh[:, :, 0], -5.0, 40.0))
        rate = np.exp(np.clip(sh[:, :, 1], -30.0, 3.0))
        beta = rate / s0
        gamma = _sigmoid(sh[:, :, 2])
        omega = np.exp(np.clip(sh[:, :, 3], -40.0, 40.0))
        starts = np.asarray(starts, dtype=np.int64)
        pop, aud_k = _sir_kernel(beta, gamma, s0, omega, starts, n, with_audience)
        if with_audience:
            aud = aud_k
    if level:
        lo, hi = LEVEL_LOG_RANGE
        pop = pop + np.exp(np.clip(theta[:, level_index(k, period)], lo, hi))[:, None]
    if period is not None:
        pt = theta[:, SHOCK_WIDTH * k : SHOCK_WIDTH * k + PERIOD_WIDTH]
        factor = periodic_factor(_sigmoid(pt[:, 0]), pt[:, 1], period, n)
        pop = pop * factor
        if aud is not None:
            aud = aud * factor
    return pop, aud


def periodic_factor(amplitude: FloatArray, phase: FloatArray, period: float, n: int) -> FloatArray:
    """The periodic term's multiplier ``(batch, n)`` for amplitudes and phases ``(batch,)``."""
    t_axis = np.arange(n, dtype=np.float64)[None, :]
    wave = np.sin(2.0 * np.pi * (t_axis + np.asarray(phase)[:, None]) / period) + 1.0
    factor: FloatArray = 1.0 - 0.5 * np.asarray(amplitude)[:, None] * wave
    return factor


def simulate(
    shocks: list[Shock], n: int, period: Period | None = None, level: float | None = None
) -> tuple[FloatArray, FloatArray]:
    """Noiseless popularity and its audience part for natural-unit parameters."""
    theta, starts = pack(shocks, period, level)
    pop, aud = simulate_batch(
        theta[None, :],
        starts,
        n,
        period.period if period else None,
        with_audience=True,
        level=level is not None,
    )
    assert aud is not None
    return pop[0], aud[0]


def pack(
    shocks: list[Shock], period: Period | None, level: float | None = None
) -> tuple[FloatArray, NDArray[np.int64]]:
    """Unconstrained parameter vector and start windows for ``shocks`` (+ ``period``,
    + ``level`` plays per window)."""
    parts = [encode_shock(s) for s in shocks]
    if period is not None:
        parts.append(encode_period(period))
    if level is not None:
        parts.append(np.array([encode_level(level)]))
    theta = np.concatenate(parts) if parts else np.zeros(0)
    starts = np.array([s.start for s in shocks], dtype=np.int64)
    return theta, starts


@numba.njit(cache=True, nogil=True)
def _sir_rows(
    beta: FloatArray,
    gamma: FloatArray,
    s0: FloatArray,
    omega: FloatArray,
    starts: NDArray[np.int64],
    n: int,
) -> FloatArray:
    """Compiled recurrence for ``m`` independent shocks, each with its own start: ``(m, n)``."""
    m = beta.shape[0]
    out = np.zeros((m, n))
    for r in range(m):
        s = s0[r]
        i = 1.0
        keep = 1.0 - gamma[r]
        for t in range(max(starts[r], 0), n):
            out[r, t] = omega[r] * i
            new = beta[r] * s * i
            if new > s:
                new = s
            s -= new
            i = keep * i + new
    return out


def _natural(sh: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """``(m, 4)`` unconstrained shock rows -> beta, gamma, S0, omega (clipped like the batch)."""
    s0 = np.exp(np.clip(sh[:, 0], -5.0, 40.0))
    beta = np.exp(np.clip(sh[:, 1], -30.0, 3.0)) / s0
    gamma = _sigmoid(sh[:, 2])
    omega = np.exp(np.clip(sh[:, 3], -40.0, 40.0))
    return beta, gamma, s0, omega


def _factor(pt: FloatArray, n: int, period: float) -> FloatArray:
    amp = _sigmoid(pt[..., 0:1])
    phase = pt[..., 1:2]
    t_axis = np.arange(n, dtype=np.float64)
    return np.asarray(
        1.0 - 0.5 * amp * (np.sin(2.0 * np.pi * (t_axis + phase) / period) + 1.0),
        dtype=np.float64,
    )


def jacobian(
    theta: FloatArray,
    starts: NDArray[np.int64],
    n: int,
    period: float | None,
    steps: FloatArray,
    level: bool = False,
) -> tuple[FloatArray, FloatArray]:
    """Popularity and its forward-difference Jacobian ``(n, P)`` at ``theta``.

    Shocks are independent, so perturbing a parameter of shock ``j`` only needs shock
    ``j`` re-simulated: ``4K`` single-shock runs instead of ``4K`` runs of all ``K``
    shocks, which keeps a Jacobian as cheap as a few model evaluations however many
    shocks there are. The level's column is exact (plays are linear in it).
    """
    theta = np.asarray(theta, dtype=np.float64)
    k = len(starts)
    starts = np.asarray(starts, dtype=np.int64)
    sh = theta[: SHOCK_WIDTH * k].reshape(k, SHOCK_WIDTH)
    base = _sir_rows(*_natural(sh), starts, n)
    pert = np.repeat(sh, SHOCK_WIDTH, axis=0)
    idx = np.arange(SHOCK_WIDTH * k)
    pert[idx, idx % SHOCK_WIDTH] += steps[: SHOCK_WIDTH * k]
    curves = _sir_rows(*_natural(pert), np.repeat(starts, SHOCK_WIDTH), n)
    raw = base.sum(axis=0)
    if level:
        lo, hi = LEVEL_LOG_RANGE
        plays = float(np.exp(np.clip(theta[level_index(k, period)], lo, hi)))
        raw = raw + plays
    factor = np.ones(n)
    if period is not None:
        factor = _factor(theta[SHOCK_WIDTH * k : SHOCK_WIDTH * k + PERIOD_WIDTH], n, period)
    cols = (curves - np.repeat(base, SHOCK_WIDTH, axis=0)) / steps[: SHOCK_WIDTH * k, None]
    jac = [cols * factor]
    if period is not None:
        pt = theta[SHOCK_WIDTH * k : SHOCK_WIDTH * k + PERIOD_WIDTH]
        for q in range(PERIOD_WIDTH):
            moved = pt.copy()
            moved[q] += steps[SHOCK_WIDTH * k + q]
            jac.append(
                (raw * (_factor(moved, n, period) - factor) / steps[SHOCK_WIDTH * k + q])[None, :]
            )
    if level:
        jac.append((plays * factor)[None, :])
    return raw * factor, np.asarray(np.concatenate(jac, axis=0).T, dtype=np.float64)
