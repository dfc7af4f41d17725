"""Shock candidates from a Mexican-hat (Ricker) continuous wavelet transform.

``scipy.signal.cwt`` and ``scipy.signal.ricker`` were removed from SciPy, so the
transform is done here: one FFT of the series, one FFT per wavelet width, products and
inverse FFTs (``O(n log n)`` per width). Widths are 1, 2, 4, ... 256 windows. A
candidate is a local maximum of the transform at some width whose coefficient stands
out from that width's noise level; its shock starts at ``peak - width`` and its volume is
the series' mass in ``[peak - width, peak + width]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

WIDTHS: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
# A transform coefficient must exceed this many robust standard deviations of the noise
# (median absolute deviation of the finest width's coefficients) to be a candidate: the
# cut that keeps day-to-day noise from becoming shocks.
MIN_SNR = 3.0


@dataclass(frozen=True)
class Candidate:
    """A shock candidate: where it peaks, its wavelet width, start and volume."""

    peak: int
    width: int
    start: int
    volume: float
    coefficient: float


def ricker(points: int, width: float) -> FloatArray:
    """The Ricker ("Mexican hat") wavelet sampled at ``points`` points, unit energy form."""
    a = float(width)
    amp = 2.0 / (np.sqrt(3.0 * a) * np.pi**0.25)
    t = np.arange(points, dtype=np.float64) - (points - 1) / 2.0
    x = (t / a) ** 2
    return np.asarray(amp * (1.0 - x) * np.exp(-x / 2.0), dtype=np.float64)


def cwt(y: FloatArray, widths: tuple[int, ...] = WIDTHS) -> FloatArray:
    """Ricker CWT of ``y``: ``(len(widths), len(y))``, aligned ("same" convolution)."""
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    out = np.zeros((len(widths), n))
    if n == 0:
        return out
    for row, w in enumerate(widths):
        points = int(min(10 * w, n))
        kernel = ricker(points, w)
        size = n + points - 1
        nfft = 1 << (size - 1).bit_length()
        full = np.fft.irfft(np.fft.rfft(y, nfft) * np.fft.rfft(kernel, nfft), nfft)[:size]
        # "same" mode: centre the full convolution on the input.
        offset = (points - 1) // 2
        out[row] = full[offset : offset + n]
    return out


def usable_widths(n: int, widths: tuple[int, ...] = WIDTHS) -> tuple[int, ...]:
    """Widths whose wavelet (support ~ 2 * width each side) fits in ``n`` windows."""
    return tuple(w for w in widths if 2 * w < n)


def candidates(
    y: FloatArray, widths: tuple[int, ...] = WIDTHS, min_snr: float = MIN_SNR
) -> list[Candidate]:
    """Shock candidates in decreasing volume, one per peak neighbourhood.

    ``y`` must be finite (fill gaps first). Maxima of every width are collected; a bump
    found at several widths is kept once, at the width with the largest
    coefficient-to-noise ratio.
    """
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    ws = usable_widths(n, widths)
    if not ws:
        return []
    coef = cwt(y, ws)
    # The unit-energy wavelet gives white noise the same coefficient spread at every
    # width, so the finest width (mostly noise) calibrates the threshold for all.
    finest = coef[0]
    noise = float(np.median(np.abs(finest - np.median(finest)))) * 1.4826
    if noise <= 0:
        noise = float(np.std(finest)) or 1e-12
    cumsum = np.concatenate([[0.0], np.cumsum(y)])
    found: list[tuple[float, Candidate]] = []
    for row, w in enumerate(ws):
        c = coef[row]
        # Local maxima over a +-width neighbourhood (sliding max via stride tricks).
        half = max(1, w)
        padded = np.pad(c, half, mode="constant", constant_values=-np.inf)
        windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
        is_max = (c >= windows.max(axis=1)) & (c > min_snr * noise) & (c > 0)
        for peak in np.flatnonzero(is_max):
            lo = max(0, int(peak) - w)
            hi = min(n, int(peak) + w + 1)
            volume = float(cumsum[hi] - cumsum[lo])
            cand = Candidate(
                peak=int(peak),
                width=int(w),
                start=max(0, int(peak) - w),
                volume=volume,
                coefficient=float(c[peak]),
            )
            found.append((float(c[peak]) / noise, cand))
    # Keep the strongest scale per neighbourhood: a weaker candidate whose support
    # overlaps a stronger one's peak is the same bump (or a blend of bumps) seen at
    # another scale. The fit recomputes candidates on what is left unexplained, so a
    # bump hidden here by a stronger neighbour gets its turn later.
    found.sort(key=lambda sc: -sc[0])
    kept: list[Candidate] = []
    for _snr, cand in found:
        if any(abs(cand.peak - k.peak) <= max(1, cand.width, k.width) for k in kept):
            continue
        kept.append(cand)
    kept.sort(key=lambda c: -c.volume)
    return kept
