"""Forecasts with Phoenix-R: fit a prefix, predict what follows, anchored at the origin."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scoring.revisit.fit import FitError, Options, fit
from scoring.revisit.model import FloatArray


@dataclass(frozen=True)
class Forecast:
    """Fit on a prefix, predict the next ``horizon`` windows."""

    horizon: int
    predicted: FloatArray
    actual: FloatArray
    rmse: float
    n_shocks: int

    def as_dict(self) -> dict[str, object]:
        """JSON-ready forecast (the ``revisit_fits.forecast`` value)."""
        return {
            "horizon": self.horizon,
            "predicted": [float(v) for v in self.predicted],
            "rmse": self.rmse,
            "prefix_shocks": self.n_shocks,
        }


ANCHOR_WINDOWS = 7


def anchored(curve: FloatArray, prefix: FloatArray, windows: int = ANCHOR_WINDOWS) -> FloatArray:
    """``curve`` (the fit over the prefix and beyond) with the level it misses at the origin.

    The shocks are fitted to the whole prefix, so the curve's level where the forecast
    starts is a compromise with the distant past. Its mean miss over the last
    ``windows`` observed windows before the origin (a week of days) is carried forward
    as a persistent level, and popularity is kept at or above zero. Returns the curve
    past the prefix.
    """
    n = len(prefix)
    recent = prefix[max(0, n - windows) :] - curve[max(0, n - windows) : n]
    seen = recent[np.isfinite(recent)]
    shift = float(seen.mean()) if seen.size else 0.0
    return np.asarray(np.maximum(curve[n:] + shift, 0.0), dtype=np.float64)


def rmse(predicted: FloatArray, actual: FloatArray) -> float:
    """Root mean square error over the windows where ``actual`` is observed."""
    ok = np.isfinite(actual)
    if not ok.any():
        return float("nan")
    return float(np.sqrt(np.mean((predicted[ok] - actual[ok]) ** 2)))


def forecast(
    y: FloatArray,
    horizon: int,
    period: float | tuple[float, ...] | None = None,
    options: Options | None = None,
) -> Forecast:
    """Fit Phoenix-R to all but the last ``horizon`` windows and predict them, the fitted
    curve anchored at the origin (:func:`anchored`)."""
    y = np.asarray(y, dtype=np.float64)
    if horizon < 1 or horizon >= len(y):
        raise FitError(f"forecast horizon {horizon} must be in 1 .. {len(y) - 1}")
    prefix = y[:-horizon]
    model = fit(prefix, period, options=options or Options(), profile_share=False)
    pred = anchored(model.predict(len(y)), prefix)
    actual = y[-horizon:]
    return Forecast(
        horizon=horizon,
        predicted=pred,
        actual=actual,
        rmse=rmse(pred, actual),
        n_shocks=model.n_shocks,
    )
