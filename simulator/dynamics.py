"""Play-counter dynamics: multi-shock SIR with revisits (Phoenix-R), pure numpy.

Each shock ``k`` of a track is an SIR epidemic of its own that starts at ``start_h[k]``
hours after the track's upload with ``S(0)=S0``, ``I(0)=I0`` and parameters ``beta``,
``gamma``, ``omega``::

    dS/dt = -beta S I
    dI/dt =  beta S I - gamma I
    plays(t) = sum_k omega_k I_k(t)              (revisits by the infected)

optionally modulated by a periodic term ``1 + amp sin(2 pi t / period)`` in absolute
time (weekly or daily listening habits). The integration is forward Euler with
``SUBSTEPS`` sub-steps per hour; the hourly totals it returns are *the* noiseless curve
of the ground truth (so a fit can be compared to it exactly).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

SUBSTEPS = 4
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Shocks:
    """Shock parameters, one row per shock; ``track`` indexes the tracks (0-based)."""

    track: I64
    start_h: I64
    s0: F64
    i0: F64
    beta: F64
    gamma: F64
    omega: F64

    def subset(self, mask: npt.NDArray[np.bool_]) -> Shocks:
        """The shocks selected by ``mask`` (order kept)."""
        return Shocks(
            self.track[mask],
            self.start_h[mask],
            self.s0[mask],
            self.i0[mask],
            self.beta[mask],
            self.gamma[mask],
            self.omega[mask],
        )


def hourly_plays(
    shocks: Shocks,
    n_tracks: int,
    hours: int,
    created_s: I64,
    period_s: I64,
    period_amp: F64,
) -> F64:
    """Noiseless plays per hour, shape ``(n_tracks, hours)``; hour ``h`` covers ``[h, h+1)``.

    ``created_s``/``period_s``/``period_amp`` are per track (``period_s == 0``: no
    periodic term). Shocks whose ``start_h`` lies outside ``[0, hours)`` never start.
    """
    out = np.zeros((n_tracks, hours), dtype=np.float64)
    n = shocks.track.size
    if n == 0 or hours == 0:
        return out
    s = shocks.s0.astype(np.float64).copy()
    i = np.zeros(n, dtype=np.float64)
    order = np.argsort(shocks.start_h, kind="stable")
    starts = shocks.start_h[order]
    ptr = 0
    dt = 1.0 / SUBSTEPS
    for h in range(hours):
        # activate the shocks starting this hour (I jumps from 0 to I0)
        while ptr < n and starts[ptr] <= h:
            if starts[ptr] == h:
                k = order[ptr]
                i[k] = shocks.i0[k]
            ptr += 1
        acc = np.zeros(n, dtype=np.float64)
        for _ in range(SUBSTEPS):
            infect = shocks.beta * s * i * dt
            infect = np.minimum(infect, s)
            recover = shocks.gamma * i * dt
            acc += shocks.omega * i * dt
            s = s - infect
            i = i + infect - recover
        out[:, h] = np.bincount(shocks.track, weights=acc, minlength=n_tracks)
    periodic = period_s > 0
    if periodic.any():
        rows = np.flatnonzero(periodic)
        mid = created_s[rows, None].astype(np.float64) + (np.arange(hours) + 0.5) * 3600.0
        phase = 2.0 * np.pi * mid / period_s[rows, None].astype(np.float64)
        out[rows] *= 1.0 + period_amp[rows, None] * np.sin(phase)
    return out


def cumulative(hourly: F64) -> F64:
    """Cumulative plays at each whole hour, shape ``(n, hours + 1)`` starting at 0."""
    cum = np.zeros((hourly.shape[0], hourly.shape[1] + 1), dtype=np.float64)
    np.cumsum(hourly, axis=1, out=cum[:, 1:])
    return cum
