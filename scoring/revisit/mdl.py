"""Minimum description length of a Phoenix-R model, in bits, as the paper codes it.

``log*`` for every integer (the shock count, each start, each shock's ``S0``), 64 bits
per real parameter, and the residuals under a Gaussian code.
"""

from __future__ import annotations

import math

import numpy as np

from scoring.revisit.model import LEVEL_WIDTH, PERIOD_WIDTH, SHOCK_WIDTH, FloatArray

BITS_PER_REAL = 64


def log_star(n: int) -> float:
    """Rissanen's universal code length of a positive integer, in bits."""
    if n < 1:
        raise ValueError("log* is defined for positive integers")
    bits = math.log2(2.865064)
    x = float(n)
    while True:
        x = math.log2(x)
        if x <= 0:
            break
        bits += x
    return bits


def model_bits(
    n_shocks: int,
    n_points: int,
    with_period: bool,
    s0: FloatArray | None = None,
    with_level: bool = False,
) -> float:
    """Bits to describe the model's structure and parameters.

    Integers cost ``log*`` as the paper codes them: the shock count, each start (a
    window among ``n_points``: ``log*(n_points)``, as the reference code charges it)
    and, with ``s0`` given, each ``S0`` (a number of individuals), so only beta, gamma
    and omega cost 64 bits each; without ``s0``, every shock parameter is charged 64.
    The periodic term's two parameters and the level cost 64 bits each.
    """
    bits = log_star(n_shocks + 1) + 1.0
    bits += n_shocks * log_star(max(n_points, 1))
    if s0 is None:
        bits += n_shocks * SHOCK_WIDTH * BITS_PER_REAL
    else:
        bits += n_shocks * (SHOCK_WIDTH - 1) * BITS_PER_REAL
        bits += sum(log_star(max(round(float(v)), 1)) for v in s0[:n_shocks])
    if with_period:
        bits += PERIOD_WIDTH * BITS_PER_REAL
    if with_level:
        bits += LEVEL_WIDTH * BITS_PER_REAL
    return bits


def data_bits(residuals: FloatArray, floor: float = 1.0 / 12.0) -> float:
    """Gaussian code length of the residuals in bits.

    ``floor`` bounds the variance from below: a count is known to within one, whose
    uniform rounding error has variance 1/12 (on a log scale that unit is tiny).
    """
    n = len(residuals)
    if n == 0:
        return 0.0
    var = max(float(np.mean(residuals**2)), floor)
    return 0.5 * n * math.log2(2.0 * math.pi * math.e * var)
