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
tied set, which moves ``beta`` by a few percent against one row per cascade.) The
baseline hazard is Breslow's estimator computed here from the weighted rows
(lifelines' own baseline ignores row weights in its risk-set sums). The survival
probability of a cascade is

    S(t | v) = exp(-sum_{bins up to t} dH0 * exp(beta * x(bin start)))

The score at decision time ``t`` extends this path over a look-ahead (default six
hours) at the current size, ``S(t + L | v(s <= t))``: the survival through the next
hours given what was seen, which separates fast-growing cascades earlier than the
survival up to ``t`` alone (both are survival functions of the same fitted model).
Breslow's hazard is pooled over groups of intervals whose length doubles with age
(``pooled_hazard``): with a few dozen viral training cascades most hours hold no
crossing at all, and a zero hazard there would make the look-ahead blind. Beside the
log size, two more survival covariates read off the cascade's own shares (no network,
as in the paper): ``rate_hours``, the shares of the last hours (how fast it grows
now), and ``gap``, the time since the last share (how long it has been quiet); the
harness chooses among them on the training cascades alone
(:class:`scoring.virality.baselines.Sansnet`). Kept for comparison:
``form="conditional"`` (the survival over the look-ahead given that the cascade is
still below the threshold, ``S(t+L | v(t)) / S(t | v(t))``; it is not monotone in
``t``, so the monotone boundary below fits it badly). The classifier is
a boundary ``s*_t`` in survival space: predict viral at ``t`` when
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

COVARIATES = ("x", "rate", "gap", "x_age")


def _counts(
    sizes: npt.NDArray[np.int32], rate_steps: int, gap: bool
) -> list[npt.NDArray[np.int64]]:
    """The covariates' integer counts at every decision time, upload included.

    Column ``j`` is decision time ``j - 1`` (column 0: upload): the size; with
    ``rate_steps`` the shares of the last ``rate_steps`` intervals; with ``gap`` the
    intervals since the last share (or since upload).
    """
    n, n_grid = sizes.shape
    padded = np.concatenate([np.zeros((n, 1), np.int64), sizes.astype(np.int64)], axis=1)
    out = [padded]
    j = np.arange(n_grid + 1)
    if rate_steps > 0:
        out.append(padded - padded[:, np.maximum(j - rate_steps, 0)])
    if gap:
        grew = np.zeros(padded.shape, dtype=bool)
        grew[:, 1:] = padded[:, 1:] > padded[:, :-1]
        last = np.maximum.accumulate(np.where(grew, j[None, :], 0), axis=1)
        out.append(j[None, :] - last)
    return out


def size_by_age(log_size: FloatArray, hours: FloatArray) -> FloatArray:
    """The size-by-age covariate: log size times ``log(1 + hours since upload)``."""
    product: FloatArray = log_size * np.log1p(hours)
    return product


def covariates(
    sizes: npt.NDArray[np.int32],
    rate_steps: int,
    gap: bool = False,
    age_times: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Time-varying covariates at each interval's start and at each decision time.

    ``sizes[:, g]`` is the size at decision time ``g``; interval ``g`` runs from decision
    time ``g - 1`` (upload for ``g = 0``) to ``g``. Covariates, each as ``log(1 + count)``:
    the size; when ``rate_steps > 0`` the shares in the last ``rate_steps`` intervals
    (how fast the cascade grows now, which the size alone cannot tell: 10 shares
    gathered in the last hour are nearer the threshold than 10 gathered over a week);
    with ``gap`` the intervals since the last share (a cascade that has gone quiet is
    dying, whatever its size); with ``age_times`` (the grid's hours) the log size times
    ``log(1 + hours since upload)``, so the size's effect may change with age (ten
    shares in the first hour say more than ten in a week: a time-varying coefficient).
    All are read off the cascade's own shares: like the paper's, they need no network.
    Returns ``(start, now)``, each ``(n, n_grid, k)``.
    """
    n_grid = sizes.shape[1]
    counts = [np.log1p(c.astype(np.float64)) for c in _counts(sizes, rate_steps, gap)]
    if age_times is not None:
        hours = np.concatenate([[0.0], age_times[:n_grid]])
        counts.append(size_by_age(counts[0], hours[None, :]))
    start = np.stack([c[:, :n_grid] for c in counts], axis=2)
    now = np.stack([c[:, 1:] for c in counts], axis=2)
    return start, now


@dataclass(frozen=True)
class SansnetModel:
    """A fitted SANSNET classifier (``coef``: log size first, then the recent rate)."""

    grid: Grid
    threshold: int
    coef: FloatArray
    coef_se: FloatArray
    baseline_hazard: FloatArray
    log_hazard_cut: FloatArray
    lookahead_steps: int
    n_rows: int
    n_events: int
    rate_steps: int = 0
    gap: bool = False
    age: bool = False
    form: str = "path"

    @property
    def beta(self) -> float:
        """The coefficient of log cascade size."""
        return float(self.coef[0])

    @property
    def beta_se(self) -> float:
        """Its standard error."""
        return float(self.coef_se[0])

    def cumulative_hazard(self, sizes: npt.NDArray[np.int32]) -> FloatArray:
        """``H[c, g]``: cumulative hazard of cascade ``c`` seen at decision time ``g``.

        ``sizes[:, g]`` is the size at decision time ``g`` (``sizes`` has one column per
        grid time); nothing after ``g`` is read. ``form``:

        * ``path`` (default): the hazard accumulated along the observed path up to
          ``g`` plus the next ``lookahead_steps`` intervals at the current covariates,
          so ``S = exp(-H) = S(t+L | v(s <= t))`` is the probability of not crossing
          the threshold by then; non-increasing in ``t`` like any survival function;
        * ``conditional``: the look-ahead's hazard alone, ``S(t+L | v(t)) / S(t | v(t))``,
          the probability of not crossing within the look-ahead given that the
          cascade is still below the threshold now (not monotone in ``t``).

        The hazard is kept because survival probabilities of small cascades round to
        exactly 1.0 in floating point.
        """
        n_grid = self.baseline_hazard.shape[0]
        start, now = covariates(sizes[:, :n_grid], self.rate_steps, self.gap, self._ages)
        cum_h0 = np.cumsum(self.baseline_hazard)
        ahead = cum_h0[np.minimum(np.arange(n_grid) + self.lookahead_steps, n_grid - 1)] - cum_h0
        with np.errstate(over="ignore", invalid="ignore"):
            # A huge hazard overflows to inf: survival 0, which is the right limit.
            future = ahead[None, :] * np.exp(now @ self.coef)
            if self.form == "path":
                path = np.cumsum(self.baseline_hazard[None, :] * np.exp(start @ self.coef), axis=1)
                future = path + future
            total: FloatArray = np.nan_to_num(future, nan=0.0, posinf=np.inf)
        return total

    def survival(self, sizes: npt.NDArray[np.int32]) -> FloatArray:
        """``S(t | v(t))`` at every decision time (see :meth:`cumulative_hazard`)."""
        return np.exp(-self.cumulative_hazard(sizes))

    @property
    def _ages(self) -> FloatArray | None:
        return self.grid.times if self.age else None

    @property
    def boundary(self) -> FloatArray:
        """The separation boundary ``s*_t`` in survival space."""
        return np.exp(-np.exp(self.log_hazard_cut))

    def scores(self, sizes: npt.NDArray[np.int32]) -> FloatArray:
        """Log cumulative hazard (higher = more viral; -inf where the hazard is zero)."""
        with np.errstate(divide="ignore"):
            log_h: FloatArray = np.log(self.cumulative_hazard(sizes))
        return log_h

    def decide(self, sizes: npt.NDArray[np.int32]) -> tuple[FloatArray, BoolArray]:
        """Log cumulative hazard and the boundary's decisions ``S <= s*_t``."""
        log_h = self.scores(sizes)
        return log_h, log_h >= self.log_hazard_cut[None, :]

    def predicted_hours_to_viral(self, sizes: npt.NDArray[np.int32]) -> FloatArray:
        """For each cascade and decision time: when it should cross the threshold.

        The covariates are held at their current values (the size can only grow, so
        this errs late) and the answer is the first grid time at which the conditional
        survival from now falls to one half; NaN when that happens beyond the horizon.
        """
        times = self.grid.times
        cum_h0 = np.cumsum(self.baseline_hazard)
        _, now = covariates(sizes, self.rate_steps, self.gap, self._ages)
        with np.errstate(over="ignore"):
            need = cum_h0[None, :] + np.log(2.0) * np.exp(-(now @ self.coef))
        idx = np.searchsorted(cum_h0, need.ravel(), side="left").reshape(need.shape)
        out = np.full(need.shape, np.nan)
        ok = idx < times.shape[0]
        out[ok] = times[idx[ok]]
        return out

    def summary(self) -> dict[str, float | int | list[float]]:
        """Fitted parameters for the run's metrics."""
        return {
            "coef": [float(c) for c in self.coef],
            "coef_se": [float(c) for c in self.coef_se],
            "rate_steps": self.rate_steps,
            "gap": self.gap,
            "age": self.age,
            "rows": self.n_rows,
            "events": self.n_events,
            "lookahead_steps": self.lookahead_steps,
            "boundary_log_hazard": [round(float(b), 4) for b in self.log_hazard_cut],
        }


def risk_table(
    sizes: npt.NDArray[np.int32],
    labels: Labels,
    cascades: Cascades,
    grid: Grid,
    rate_steps: int = 0,
    gap: bool = False,
    age: bool = False,
) -> pd.DataFrame:
    """Collapsed counting-process rows: one per (interval, covariates at its start, event).

    ``weight`` is how many cascade-intervals share that row. Sizes and recent counts
    are capped at ``threshold - 1``: an at-risk cascade has not reached the threshold.
    """
    times = grid.times
    n_grid = times.shape[0]
    starts = np.concatenate([[0.0], times[:-1]])
    cap = labels.threshold
    names = ["x", *(["rate"] if rate_steps > 0 else []), *(["gap"] if gap else [])]
    # Each covariate's count is one digit of a row's key, in a base that holds it.
    bases = [cap if name != "gap" else n_grid + 1 for name in names]
    counts = [
        np.minimum(c[:, :n_grid], base - 1)
        for c, base in zip(_counts(sizes, rate_steps, gap), bases, strict=True)
    ]
    t_v = labels.viral_hours[:, None]
    observed = np.minimum(cascades.observed_hours, grid.horizon_hours)[:, None]
    at_risk = (t_v > starts[None, :]) & (observed > starts[None, :])
    event = at_risk & (t_v <= times[None, :]) & labels.viral[:, None]
    key = np.broadcast_to(np.arange(n_grid, dtype=np.int64)[None, :], at_risk.shape).copy()
    for c, base in zip(counts, bases, strict=True):
        key = key * base + c
    # Unique keys instead of a dense count table: a large threshold stays cheap.
    cells, inverse = np.unique(key[at_risk], return_inverse=True)
    risk = np.bincount(inverse, minlength=cells.size)
    deaths = np.bincount(inverse[event[at_risk]], minlength=cells.size)
    digits = []
    rest = cells
    for base in bases[::-1]:
        digits.append(rest % base)
        rest = rest // base
    g = rest
    values = digits[::-1]
    frames = []
    for is_event, weight in ((1, deaths), (0, risk - deaths)):
        keep = weight > 0
        cols: dict[str, Any] = {"start": starts[g[keep]], "stop": times[g[keep]]}
        for name, v in zip(names, values, strict=True):
            cols[name] = np.log1p(v[keep].astype(np.float64))
        if age:
            cols["x_age"] = size_by_age(cols["x"], cols["start"])
        cols["event"] = np.full(int(keep.sum()), is_event, dtype=np.int64)
        cols["weight"] = weight[keep].astype(np.float64)
        frames.append(pd.DataFrame(cols))
    table = pd.concat(frames, ignore_index=True)
    table["id"] = np.arange(len(table))
    return table


def _covariate_names(table: pd.DataFrame) -> list[str]:
    return [c for c in COVARIATES if c in table.columns]


def _breslow(table: pd.DataFrame, coef: FloatArray, grid: Grid, pooled: bool = False) -> FloatArray:
    """Breslow's baseline hazard increment of every interval, with row weights.

    ``pooled``: one hazard rate per group of intervals whose length doubles with age
    (1, 1, 2, 4, 8, ... intervals), spread evenly over its intervals: the same
    estimator on coarser bins, so that hours without any crossing in the training
    data do not get a hazard of exactly zero.
    """
    n_grid = grid.times.shape[0]
    g = np.rint(table["stop"].to_numpy() / grid.step_hours).astype(np.int64) - 1
    w = table["weight"].to_numpy()
    with np.errstate(over="ignore"):
        rel = np.exp(table[_covariate_names(table)].to_numpy() @ coef)
    risk = np.bincount(g, weights=w * rel, minlength=n_grid)
    deaths = np.bincount(g, weights=w * table["event"].to_numpy(), minlength=n_grid)
    if pooled:
        group = np.floor(np.log2(np.arange(n_grid) + 1.0)).astype(np.int64)
        risk_g = np.bincount(group, weights=risk)[group]
        deaths_g = np.bincount(group, weights=deaths)[group]
        return np.where(risk_g > 0, deaths_g / np.where(risk_g > 0, risk_g, 1.0), 0.0)
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
    cascades: Cascades,
    labels: Labels,
    grid: Grid,
    lookahead_hours: float = 6.0,
    rate_hours: float = 0.0,
    form: str = "path",
    pooled_hazard: bool = True,
    gap: bool = False,
    age: bool = False,
) -> SansnetModel:
    """Fit the Cox model and the separation boundary on training cascades.

    ``rate_hours > 0`` adds the shares of the last ``rate_hours`` as a time-varying
    covariate, ``gap`` the time since the last share, ``age`` the log size's
    interaction with the cascade's age (see :func:`covariates`);
    ``form`` is the score's survival (``path`` or ``conditional``, see
    :meth:`SansnetModel.cumulative_hazard`);
    ``pooled_hazard`` pools Breslow's hazard over doubling groups of intervals (see
    :func:`_breslow`). Raises :class:`DegenerateTraining` when the data hold no
    virality event, or no fully observed negative: the hazard or the boundary would
    be undefined.
    """
    if labels.n_viral == 0:
        raise DegenerateTraining(
            "no training cascade reached the threshold: the hazard of virality is undefined"
        )
    if labels.n_negative == 0:
        raise DegenerateTraining(
            "no fully observed non-viral training cascade: the boundary cannot be placed"
        )
    rate_steps = max(0, round(rate_hours / grid.step_hours))
    sizes = cascades.size_matrix(grid.times)
    table = risk_table(sizes, labels, cascades, grid, rate_steps, gap, age)
    n_events = int(table.loc[table["event"] == 1, "weight"].sum())
    if n_events == 0:
        raise DegenerateTraining("no virality event falls inside the horizon")
    if table["x"].nunique() < 2:
        raise DegenerateTraining("every at-risk interval has the same size: beta is undefined")
    if rate_steps and table["rate"].nunique() < 2:
        # A constant column makes the Hessian singular; the size alone still works.
        table = table.drop(columns="rate")
        rate_steps = 0
    if gap and table["gap"].nunique() < 2:
        table = table.drop(columns="gap")
        gap = False
    if age and table["x_age"].nunique() < 2:
        table = table.drop(columns="x_age")
        age = False
    names = _covariate_names(table)
    ctv = _fit_cox(table, penalizer=0.0)
    params = ctv.params_[names].to_numpy(dtype=np.float64)
    if not (np.all(np.isfinite(params)) and np.all(np.abs(params) <= MAX_BETA)):
        # Separable data (every cascade at one size crossed, none below) sends the
        # unpenalised estimate to infinity: a small ridge penalty keeps it finite.
        ctv = _fit_cox(table, penalizer=RIDGE)
    coef = ctv.params_[names].to_numpy(dtype=np.float64)
    coef_se = ctv.standard_errors_[names].to_numpy(dtype=np.float64)
    model = SansnetModel(
        grid=grid,
        threshold=labels.threshold,
        coef=coef,
        coef_se=coef_se,
        baseline_hazard=_breslow(table, coef, grid, pooled_hazard),
        log_hazard_cut=np.zeros(grid.times.shape[0]),
        lookahead_steps=max(1, round(lookahead_hours / grid.step_hours)),
        n_rows=len(table),
        n_events=n_events,
        rate_steps=rate_steps,
        gap=gap,
        age=age,
        form=form,
    )
    # The path survival falls with t: its boundary s*_t is non-increasing (a rising cut
    # on log H). The conditional survival over a look-ahead rises as attention fades,
    # so its boundary is monotone the other way.
    cut = separation_boundary(model.scores(sizes), labels, grid, increasing=form == "path")
    return SansnetModel(**{**model.__dict__, "log_hazard_cut": cut})


def separation_boundary(
    log_hazard: FloatArray, labels: Labels, grid: Grid, *, increasing: bool = True
) -> FloatArray:
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
    iso = IsotonicRegression(increasing=increasing, out_of_bounds="clip")
    iso.fit(times[defined], cuts[defined], sample_weight=weights[defined])
    return np.asarray(iso.predict(times), dtype=np.float64)
