"""SANSNET: virality as a survival problem on share counts alone.

Each cascade is "at risk" of going viral from upload until it reaches the threshold
(the event) or stops being observed (censoring). Risk intervals are cut at the decision
grid (``step`` hours) from the event times, and the hazard of crossing the threshold in
an interval depends on the cascade size at the interval's start, a time-varying
covariate ``x(t) = log(1 + v(t))``:

    h(t | v(t)) = h0(t) * exp(beta * x(t))

``beta`` is fitted by lifelines' ``CoxTimeVaryingFitter``. Rows with the same interval
and size are interchangeable in the partial likelihood, so they are collapsed into one
weighted row: the fit costs the same for 1,000 or 100,000 cascades. (Events on the
grid are tied; lifelines' Efron correction counts a weighted row as one member of the
tied set, which moves ``beta`` by a few percent against one row per cascade.) The baseline hazard
is Breslow's estimator computed here from the weighted rows (lifelines' own baseline
ignores row weights in its risk-set sums). The survival probability of a cascade is

    S(t | v) = exp(-sum_{bins up to t} dH0 * exp(beta * x(bin start)))

The score at decision time ``t`` extends this path over a look-ahead (default six
hours) at the current size, ``S(t + L | v(s <= t))``: the survival through the next
hours given what was seen, which separates fast-growing cascades earlier than the
survival up to ``t`` alone (both are survival functions of the same fitted model),
and the classifier is a boundary ``s*_t`` in survival space: predict viral at ``t`` when
``S(t | v) <= s*_t``. At every decision time the cut minimising the class-balanced cost
FN/P + FP/N over training cascades still alive is found, and the cuts are made monotone
(non-increasing in ``t``, like a survival function) by weighted isotonic regression.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from scoring.virality.cascades import BoolArray, Cascades, FloatArray
from scoring.virality.labels import (
    DegenerateTraining,
    Grid,
    Labels,
    alive_matrix,
    best_threshold,
)


@dataclass(frozen=True)
class SansnetModel:
    """A fitted SANSNET classifier."""

    grid: Grid
    threshold: int
    beta: float
    beta_se: float
    baseline_hazard: FloatArray
    log_hazard_cut: FloatArray
    lookahead_steps: int
    n_rows: int
    n_events: int

    def cumulative_hazard(self, sizes: npt.NDArray[np.int32]) -> FloatArray:
        """``H[c, g]``: cumulative hazard of cascade ``c`` seen at decision time ``g``.

        ``sizes[:, g]`` is the size at decision time ``g`` (``sizes`` has one column per
        grid time). The hazard accumulated along the observed path up to ``g`` is
        extended over the next ``lookahead_steps`` intervals at the current size, so
        ``S = exp(-H)`` is the probability of not crossing the threshold within the
        look-ahead given everything seen so far, and nothing after ``g`` is read. The
        hazard is kept because survival probabilities of small cascades round to
        exactly 1.0 in floating point.
        """
        n_grid = self.baseline_hazard.shape[0]
        start_sizes = np.concatenate([np.zeros((sizes.shape[0], 1), np.int32), sizes], axis=1)
        x = np.log1p(start_sizes[:, :n_grid].astype(np.float64))
        now = np.log1p(sizes.astype(np.float64))
        cum_h0 = np.cumsum(self.baseline_hazard)
        ahead = cum_h0[np.minimum(np.arange(n_grid) + self.lookahead_steps, n_grid - 1)] - cum_h0
        with np.errstate(over="ignore", invalid="ignore"):
            # Interval g (0-based) runs from decision time g-1 to g, at its start size.
            # A huge hazard overflows to inf: survival 0, which is the right limit.
            path = np.cumsum(self.baseline_hazard[None, :] * np.exp(self.beta * x), axis=1)
            future = ahead[None, :] * np.exp(self.beta * now)
            total: FloatArray = np.nan_to_num(path + future, nan=0.0, posinf=np.inf)
        return total

    def survival(self, sizes: npt.NDArray[np.int32]) -> FloatArray:
        """``S(t | v(t))`` at every decision time (see :meth:`cumulative_hazard`)."""
        return np.exp(-self.cumulative_hazard(sizes))

    @property
    def boundary(self) -> FloatArray:
        """The separation boundary ``s*_t`` in survival space."""
        return np.exp(-np.exp(self.log_hazard_cut))

    def decide(self, sizes: npt.NDArray[np.int32]) -> tuple[FloatArray, BoolArray]:
        """Log cumulative hazard (higher = more viral) and decisions ``S <= s*_t``."""
        with np.errstate(divide="ignore"):
            log_h = np.log(self.cumulative_hazard(sizes))
        return log_h, log_h >= self.log_hazard_cut[None, :]

    def predicted_hours_to_viral(self, sizes: npt.NDArray[np.int32]) -> FloatArray:
        """For each cascade and decision time: when it should cross the threshold.

        The size is held at its current value (it can only grow, so this errs late) and
        the answer is the first grid time at which the conditional survival from now
        falls to one half; NaN when that happens beyond the horizon.
        """
        times = self.grid.times
        cum_h0 = np.cumsum(self.baseline_hazard)
        x = np.log1p(sizes.astype(np.float64))
        need = cum_h0[None, :] + np.log(2.0) * np.exp(-self.beta * x)
        idx = np.searchsorted(cum_h0, need.ravel(), side="left").reshape(need.shape)
        out = np.full(need.shape, np.nan)
        ok = idx < times.shape[0]
        out[ok] = times[idx[ok]]
        return out

    def summary(self) -> dict[str, float | int | list[float]]:
        """Fitted parameters for the run's metrics."""
        return {
            "beta": self.beta,
            "beta_se": self.beta_se,
            "rows": self.n_rows,
            "events": self.n_events,
            "lookahead_steps": self.lookahead_steps,
            "boundary_log_hazard": [round(float(b), 4) for b in self.log_hazard_cut],
        }


def risk_table(
    sizes: npt.NDArray[np.int32], labels: Labels, cascades: Cascades, grid: Grid
) -> pd.DataFrame:
    """Collapsed counting-process rows: one per (interval, size at its start, event).

    ``weight`` is how many cascade-intervals share that row.
    """
    times = grid.times
    n_grid = times.shape[0]
    starts = np.concatenate([[0.0], times[:-1]])
    start_sizes = np.concatenate([np.zeros((sizes.shape[0], 1), np.int32), sizes], axis=1)[
        :, :n_grid
    ]
    t_v = labels.viral_hours[:, None]
    observed = np.minimum(cascades.observed_hours, grid.horizon_hours)[:, None]
    at_risk = (t_v > starts[None, :]) & (observed > starts[None, :])
    event = at_risk & (t_v <= times[None, :]) & labels.viral[:, None]
    cap = labels.threshold
    key = np.arange(n_grid)[None, :] * cap + np.minimum(start_sizes, cap - 1)
    risk = np.bincount(key[at_risk], minlength=n_grid * cap)
    deaths = np.bincount(key[event], minlength=n_grid * cap)
    cells = np.nonzero(risk)[0]
    g, v = cells // cap, cells % cap
    frames = []
    for is_event, weight in ((1, deaths[cells]), (0, risk[cells] - deaths[cells])):
        keep = weight > 0
        frames.append(
            pd.DataFrame(
                {
                    "start": starts[g[keep]],
                    "stop": times[g[keep]],
                    "x": np.log1p(v[keep].astype(np.float64)),
                    "event": np.full(int(keep.sum()), is_event, dtype=np.int64),
                    "weight": weight[keep].astype(np.float64),
                }
            )
        )
    table = pd.concat(frames, ignore_index=True)
    table["id"] = np.arange(len(table))
    return table


def _breslow(table: pd.DataFrame, beta: float, grid: Grid) -> FloatArray:
    """Breslow's baseline hazard increment of every interval, with row weights."""
    n_grid = grid.times.shape[0]
    g = np.rint(table["stop"].to_numpy() / grid.step_hours).astype(np.int64) - 1
    w = table["weight"].to_numpy()
    with np.errstate(over="ignore"):
        rel = np.exp(beta * table["x"].to_numpy())
    risk = np.bincount(g, weights=w * rel, minlength=n_grid)
    deaths = np.bincount(g, weights=w * table["event"].to_numpy(), minlength=n_grid)
    return np.where(risk > 0, deaths / np.where(risk > 0, risk, 1.0), 0.0)


MAX_BETA = 50.0
RIDGE = 0.1


def _fit_cox(table: pd.DataFrame, penalizer: float) -> Any:
    """lifelines' CoxTimeVaryingFitter on the collapsed rows (integer weights)."""
    from lifelines import CoxTimeVaryingFitter
    from lifelines.exceptions import ConvergenceError

    ctv = CoxTimeVaryingFitter(penalizer=penalizer)
    try:
        with warnings.catch_warnings():
            # lifelines warns that weighted rows make its variance approximate; rows
            # are collapsed on purpose (integer weights = repeated identical rows).
            warnings.simplefilter("ignore")
            ctv.fit(
                table,
                id_col="id",
                event_col="event",
                start_col="start",
                stop_col="stop",
                weights_col="weight",
                show_progress=False,
            )
    except (ConvergenceError, np.linalg.LinAlgError) as exc:
        # A singular Hessian (few cascades, separable sizes) is a failed Newton step
        # like a non-convergence: the ridge penalty makes the problem well posed.
        if penalizer == 0.0:
            return _fit_cox(table, RIDGE)
        raise DegenerateTraining(f"the Cox model did not converge: {exc}") from exc
    return ctv


def fit(
    cascades: Cascades, labels: Labels, grid: Grid, lookahead_hours: float = 6.0
) -> SansnetModel:
    """Fit the Cox model and the separation boundary on training cascades.

    Raises :class:`DegenerateTraining` when the data hold no virality event, or no
    fully observed negative: the hazard or the boundary would be undefined.
    """
    if labels.n_viral == 0:
        raise DegenerateTraining(
            "no training cascade reached the threshold: the hazard of virality is undefined"
        )
    if labels.n_negative == 0:
        raise DegenerateTraining(
            "no fully observed non-viral training cascade: the boundary cannot be placed"
        )
    sizes = cascades.size_matrix(grid.times)
    table = risk_table(sizes, labels, cascades, grid)
    n_events = int(table.loc[table["event"] == 1, "weight"].sum())
    if n_events == 0:
        raise DegenerateTraining("no virality event falls inside the horizon")
    if table["x"].nunique() < 2:
        raise DegenerateTraining("every at-risk interval has the same size: beta is undefined")
    ctv = _fit_cox(table, penalizer=0.0)
    if not (np.isfinite(ctv.params_["x"]) and abs(float(ctv.params_["x"])) <= MAX_BETA):
        # Separable data (every cascade at one size crossed, none below) sends the
        # unpenalised estimate to infinity: a small ridge penalty keeps it finite.
        ctv = _fit_cox(table, penalizer=RIDGE)
    beta = float(ctv.params_["x"])
    beta_se = float(ctv.standard_errors_["x"])
    dh0 = _breslow(table, beta, grid)
    model = SansnetModel(
        grid=grid,
        threshold=labels.threshold,
        beta=beta,
        beta_se=beta_se,
        baseline_hazard=dh0,
        log_hazard_cut=np.zeros(grid.times.shape[0]),
        lookahead_steps=max(1, round(lookahead_hours / grid.step_hours)),
        n_rows=len(table),
        n_events=n_events,
    )
    with np.errstate(divide="ignore"):
        log_h = np.log(model.cumulative_hazard(sizes))
    cut = separation_boundary(log_h, labels, grid)
    return SansnetModel(**{**model.__dict__, "log_hazard_cut": cut})


def separation_boundary(log_hazard: FloatArray, labels: Labels, grid: Grid) -> FloatArray:
    """The monotone boundary with class-balanced costs, as a cut on log cumulative hazard.

    ``S <= s*_t`` is ``log H >= log(-log s*_t)``; a non-increasing ``s*_t`` is a
    non-decreasing cut, which weighted isotonic regression enforces.
    """
    times = grid.times
    alive = alive_matrix(labels, times) & labels.labeled[:, None]
    cuts = np.full(times.shape[0], np.nan)
    weights = np.zeros(times.shape[0])
    for g in range(times.shape[0]):
        rows = alive[:, g]
        scores = np.maximum(log_hazard[rows, g], -745.0)  # exp underflow: -inf -> finite
        cut = best_threshold(scores, labels.viral[rows], "balanced")
        if np.isfinite(cut):
            cuts[g] = cut
            weights[g] = rows.sum()
    defined = np.isfinite(cuts)
    if not defined.any():
        raise DegenerateTraining("no decision time has both classes alive: no boundary")
    iso = IsotonicRegression(increasing=True, out_of_bounds="clip")
    iso.fit(times[defined], cuts[defined], sample_weight=weights[defined])
    return np.asarray(iso.predict(times), dtype=np.float64)
