"""The revisit scoring run: Phoenix-R fits of every polled track's play series.

Reads ``track_stats`` snapshots (:mod:`.store`), turns each track's cumulative counters
into a regular per-window series (:mod:`.series`), fits Phoenix-R (:mod:`.fit`), backtests
a forecast of the last ``horizon`` windows from the rest, and returns one
``revisit_fits`` row per track. A track that cannot be fitted (too few snapshots, an
all-zero or too short series, negative counters) gets a row whose ``error`` says why;
recounts are repaired and collection outages marked unknown, each reported in
``forecast.notes``. Fitting is CPU-bound and runs
in a worker thread so the event loop (and a worker's lease heartbeat) keeps going.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

import asyncpg
import numpy as np
import structlog
from pydantic import BaseModel, ConfigDict, Field

from scoring.registry import ScoringModel
from scoring.revisit import store
from scoring.revisit.fit import FitError, Options, fit
from scoring.revisit.forecast import anchored, forecast
from scoring.revisit.series import PERIODS, WINDOWS, SeriesError, regularize
from scoring.revisit.solve import Scale
from scoring.runs import CannotScore, ScoreResult

VERSION = "1.0"
log = structlog.get_logger("scoring.revisit")


class RevisitParams(BaseModel):
    """Parameters of a revisit run."""

    model_config = ConfigDict(extra="forbid")

    window: Literal["hourly", "daily"] = Field(default="daily", description="series resolution")
    track_ids: list[int] | None = Field(default=None, description="tracks to fit (all if unset)")
    max_tracks: int | None = Field(default=None, ge=1, description="fit at most this many")
    horizon: int | None = Field(
        default=None, ge=1, description="forecast windows (default: one period)"
    )
    periodic: bool = Field(default=True, description="try the weekly/daily periodic term")
    tolerance: float = Field(default=0.05, gt=0, lt=1, description="MDL search tolerance")
    max_shocks: int = Field(default=8, ge=1, le=32)
    level: bool = Field(default=True, description="fit a persistent background level")
    residuals_on: Scale = Field(
        default="plays",
        description="residual scale of the fit: plays, sqrt (Anscombe) or log (log1p)",
    )


def fit_track(snaps: store.Snapshots, params: dict[str, Any]) -> dict[str, Any]:
    """One track's ``revisit_fits`` record; bad input becomes an ``error``, never a raise."""
    window = params["window"]
    base: dict[str, Any] = {"track_id": snaps.track_id, "window": window, "n_points": 0}
    try:
        series = regularize(snaps.observed_at, snaps.playback_count, WINDOWS[window])
    except SeriesError as exc:
        return {**base, "error": str(exc)}
    y = series.plays
    base["n_points"] = len(y)
    period = tuple(float(p) for p in PERIODS[window]) if params["periodic"] else None
    horizon = params["horizon"] or PERIODS[window][0]
    options = Options(
        tolerance=params["tolerance"],
        max_shocks=params["max_shocks"],
        level=params["level"],
        residuals_on=params["residuals_on"],
    )
    try:
        model = fit(y, period, options=options)
    except FitError as exc:
        return {**base, "error": str(exc)}
    except (ArithmeticError, np.linalg.LinAlgError, ValueError) as exc:
        # A numerical failure of the optimiser on odd data: recorded, the run goes on.
        return {**base, "error": f"fit failed: {type(exc).__name__}: {exc}"}
    # The forecast the backtest scores: the curve anchored at the last windows seen.
    ahead = anchored(model.predict(len(y) + horizon), y)
    fc: dict[str, Any] = {
        "observed": [round(float(v), 3) for v in y],  # what the fit saw, for plots
        "horizon": horizon,
        "start": series.start + len(y) * series.window_s,
        "predicted": [round(float(v), 3) for v in ahead],
        "notes": series.notes,
    }
    try:
        back = forecast(y, horizon, period, options)
        fc["backtest_rmse"] = back.rmse
        fc["backtest_shocks"] = back.n_shocks
    except (FitError, ArithmeticError, np.linalg.LinAlgError, ValueError) as exc:
        fc["backtest_error"] = str(exc)
    if model.share_profile is not None:
        # No column of its own: the split's profile rides with the forecast's notes.
        fc["revisit_split"] = {
            **model.share_profile.as_dict(),
            "fitted_revisit_share": model.fitted_revisit_share,
            # The persistent level's plays are outside the split (nobody is modelled).
            "background_share": model.background_share,
            "level": model.level,
        }
        if not model.share_identified:
            fc["notes"] = [
                *fc["notes"],
                "audience/revisit split not identifiable from play counts: models with the "
                "same popularity put revisits anywhere in the revisit_split range",
            ]
    return {
        **base,
        "n_shocks": model.n_shocks,
        "shocks": [s.as_dict() for s in model.shocks],
        "period": model.period.as_dict() if model.period else None,
        "rmse": model.rmse,
        "audience_share": model.audience_share,
        "revisit_share": model.revisit_share,
        "forecast": _finite(fc),
        "error": None,
    }


def _finite(value: Any) -> Any:
    """JSON-safe: NaN/inf become None (jsonb has no NaN)."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def fit_all(tracks: list[store.Snapshots], params: dict[str, Any]) -> list[dict[str, Any]]:
    """Fit every track (synchronously; called in a worker thread)."""
    out = []
    for snaps in tracks:
        t0 = time.perf_counter()
        record = fit_track(snaps, params)
        log.debug(
            "revisit_track_fitted",
            track_id=snaps.track_id,
            n_shocks=record.get("n_shocks"),
            error=record.get("error"),
            seconds=round(time.perf_counter() - t0, 3),
        )
        out.append(record)
    return out


async def compute(conn: asyncpg.Connection, params: dict[str, Any]) -> ScoreResult:
    """Read snapshots, fit each track, return the ``revisit_fits`` rows and run metrics."""
    t0 = time.perf_counter()
    tracks = await store.read_snapshots(conn, params.get("track_ids"), params.get("max_tracks"))
    t_read = time.perf_counter() - t0
    if not tracks:
        raise CannotScore("no track_stats snapshots to fit (run play_poll jobs first)")
    t1 = time.perf_counter()
    records = await asyncio.to_thread(fit_all, tracks, params)
    t_fit = time.perf_counter() - t1
    fitted = [r for r in records if r.get("error") is None]
    shares = [r["revisit_share"] for r in fitted if r.get("revisit_share") is not None]
    errors: dict[str, int] = {}
    for r in records:
        if r.get("error"):
            kind = str(r["error"]).split(":")[0]
            errors[kind] = errors.get(kind, 0) + 1
    metrics = {
        "tracks": len(records),
        "fitted": len(fitted),
        "failed": len(records) - len(fitted),
        "errors": errors,
        "window": params["window"],
        "mean_revisit_share": float(np.mean(shares)) if shares else None,
        "median_shocks": float(np.median([r["n_shocks"] for r in fitted])) if fitted else None,
        "mean_rmse": float(np.mean([r["rmse"] for r in fitted])) if fitted else None,
    }
    return ScoreResult(
        metrics=metrics,
        rows=[store.fit_rows(records)],
        durations={"read_s": t_read, "fit_s": t_fit},
    )


MODEL = ScoringModel(
    name="revisit",
    version=VERSION,
    description="Phoenix-R: SIR-with-revisits shocks per track, MDL shock count, forecasts",
    params=RevisitParams,
    compute=compute,
)
