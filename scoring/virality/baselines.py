"""The models of one harness: SANSNET, CrowdCast and the papers' baselines.

Every model is fitted on training cascades and then, for test cascades, gives a score
at every decision time using only shares up to that time, and a cut per decision time:
the model's own decision is ``score >= cut``. The harness (:mod:`.evaluate`) treats
them alike; because every decision is a cut on a score, the harness can also move
every model's cuts by one tuned constant to compare them at a matched false-alarm rate.

* ``nodecount``: the number of sharers (CrowdCast's baseline), cut per decision time.
* ``szabo_huberman``: ln N_final = ln N_t + r_t (linear in log-log space); viral when
  the predicted final size reaches the threshold.
* ``logistic``: logistic regression on hourly share counts (class-balanced), one model
  per decision time.
* ``seismic``: SEISMIC's self-exciting estimate of infectiousness with the paper's
  power-law memory kernel and resharers' follower counts; viral when the predicted
  final size reaches the threshold (or the process is supercritical).
* ``crowdcast`` and ``sansnet``: see their modules.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from scoring.virality import sansnet
from scoring.virality.cascades import BoolArray, Cascades, FloatArray, IntArray
from scoring.virality.labels import (
    DegenerateTraining,
    Grid,
    Labels,
    alive_matrix,
    best_cut,
    detection_hours,
    false_alarm_shift,
    margins_of,
)


@dataclass(frozen=True)
class Inputs:
    """Everything the models may read about a set of cascades, precomputed once."""

    cascades: Cascades
    labels: Labels
    grid: Grid
    sizes: npt.NDArray[np.int32]
    crowdcast: FloatArray | None = None
    crowdcast_windows: tuple[float, ...] = ()
    event_followers: FloatArray | None = None
    artist_followers: FloatArray | None = None

    def take(self, idx: IntArray) -> Inputs:
        """The inputs of the cascades ``idx``."""
        c = self.cascades.subset(idx)
        lab = self.labels
        ev = None
        if self.event_followers is not None:
            starts, ends = self.cascades.offsets[idx], self.cascades.offsets[idx + 1]
            ev = (
                np.concatenate(
                    [self.event_followers[s:e] for s, e in zip(starts, ends, strict=True)]
                )
                if idx.size
                else np.zeros(0)
            )
        return Inputs(
            cascades=c,
            labels=Labels(
                lab.threshold,
                lab.horizon_hours,
                lab.viral_hours[idx],
                lab.viral[idx],
                lab.labeled[idx],
            ),
            grid=self.grid,
            sizes=self.sizes[idx],
            crowdcast=None if self.crowdcast is None else self.crowdcast[:, idx],
            crowdcast_windows=self.crowdcast_windows,
            event_followers=ev,
            artist_followers=None if self.artist_followers is None else self.artist_followers[idx],
        )


class Model(Protocol):
    """A virality model in the harness."""

    name: str

    def fit(self, train: Inputs) -> None:
        """Learn from training cascades (raises :class:`DegenerateTraining` if it cannot)."""

    def decide(self, test: Inputs) -> tuple[FloatArray, FloatArray]:
        """Scores (higher = more viral) at every decision time and the cut of each time.

        The model's decision is ``scores >= cuts[None, :]``.
        """


def _train_rows(train: Inputs) -> BoolArray:
    """Training cascades usable at each decision time: alive and with a known label."""
    return alive_matrix(train.labels, train.grid.times) & train.labels.labeled[:, None]


def _require_classes(train: Inputs) -> None:
    if train.labels.n_viral == 0:
        raise DegenerateTraining("training data hold no viral cascade (a single class)")
    if train.labels.n_negative == 0:
        raise DegenerateTraining("training data hold no fully observed non-viral cascade")


@dataclass
class ThresholdRanker:
    """A score cut per decision time, tuned on training data (``balanced`` or ``f1``).

    CrowdCast has one candidate score per activity-graph window (``Inputs.crowdcast``);
    at each decision time the window whose best cut separates the training cascades
    best is kept, with that cut (``windows`` records the choice, in hours).
    """

    name: str
    criterion: str = "f1"
    cuts: FloatArray = field(default_factory=lambda: np.zeros(0))
    choice: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    windows: FloatArray = field(default_factory=lambda: np.zeros(0))

    def candidates(self, data: Inputs) -> tuple[FloatArray, tuple[float, ...]]:
        """The candidate score matrices ``(candidate, cascade, time)`` and their windows."""
        if self.name == "crowdcast":
            if data.crowdcast is None:
                raise DegenerateTraining("crowdcast: no activity-graph features were computed")
            return data.crowdcast, data.crowdcast_windows
        return data.sizes.astype(np.float64)[None], (float("inf"),)

    def fit(self, train: Inputs) -> None:
        """Tune one candidate and cut per decision time on alive, labeled training cascades."""
        _require_classes(train)
        cands, windows = self.candidates(train)
        rows = _train_rows(train)
        viral = train.labels.viral
        n_grid = cands.shape[2]
        self.cuts = np.full(n_grid, np.nan)
        self.choice = np.zeros(n_grid, dtype=np.int64)
        for g in range(n_grid):
            r = rows[:, g]
            # Ties keep the first candidate (the whole activity graph).
            fits = [best_cut(c[r, g], viral[r], self.criterion) for c in cands]
            best = int(np.argmin([cost for _, cost in fits]))
            self.choice[g], self.cuts[g] = best, fits[best][0]
        self.windows = np.asarray(windows, dtype=np.float64)[self.choice]

    def score(self, data: Inputs) -> FloatArray:
        """The score matrix of the fitted candidate at each decision time."""
        cands, _ = self.candidates(data)
        return cands[self.choice, :, np.arange(cands.shape[2])].T

    def decide(self, test: Inputs) -> tuple[FloatArray, FloatArray]:
        """Viral when the score reaches the cut (never where no cut was defined)."""
        return self.score(test), np.where(np.isfinite(self.cuts), self.cuts, np.inf)


@dataclass
class SzaboHuberman:
    """Linear regression of log final size on log current size, slope fixed at one."""

    name: str = "szabo_huberman"
    offsets: FloatArray = field(default_factory=lambda: np.zeros(0))

    def fit(self, train: Inputs) -> None:
        """``r_t`` = mean of ln(1+N_final) - ln(1+N_t) over labeled training cascades."""
        lab = train.labels
        if not lab.labeled.any():
            raise DegenerateTraining("no fully observed training cascade to regress on")
        final = np.log1p(train.cascades.sizes_at(train.grid.horizon_hours)[lab.labeled])
        now = np.log1p(train.sizes[lab.labeled].astype(np.float64))
        self.offsets = (final[:, None] - now).mean(axis=0)

    def decide(self, test: Inputs) -> tuple[FloatArray, FloatArray]:
        """Predicted log final size; viral when it reaches the threshold's."""
        pred = np.log1p(test.sizes.astype(np.float64)) + self.offsets[None, :]
        return pred, np.full(pred.shape[1], np.log1p(test.labels.threshold))


@dataclass
class HourlyLogistic:
    """Logistic regression on the share counts of the last hours, one model per time."""

    name: str = "logistic"
    window_hours: int = 12
    max_rows: int = 20_000
    seed: int = 0
    models: list[LogisticRegression | None] = field(default_factory=list)

    def _features_at(self, data: Inputs, g: int) -> FloatArray:
        t = data.grid.times[g]
        edges = np.maximum(t - np.arange(self.window_hours + 1, dtype=np.float64), 0.0)
        idx = data.grid.index_at(edges)
        padded = np.concatenate([np.zeros((data.sizes.shape[0], 1), np.int32), data.sizes], axis=1)
        counts = padded[:, idx + 1].astype(np.float64)
        hourly = counts[:, :-1] - counts[:, 1:]
        return np.column_stack([np.log1p(hourly), np.log1p(counts[:, 0])])

    def fit(self, train: Inputs) -> None:
        """One class-balanced logistic regression per decision time."""
        _require_classes(train)
        rows = _train_rows(train)
        rng = np.random.default_rng(self.seed)
        self.models = []
        for g in range(train.sizes.shape[1]):
            idx = np.nonzero(rows[:, g])[0]
            y = train.labels.viral[idx]
            if y.all() or not y.any():
                self.models.append(None)
                continue
            if idx.size > self.max_rows:
                # Keep every viral cascade and subsample the rest: with class-balanced
                # weights the fit does not depend on the negatives' share anyway.
                pos, neg = idx[y], idx[~y]
                keep = rng.choice(neg.size, max(self.max_rows - pos.size, 1), replace=False)
                idx = np.sort(np.concatenate([pos, neg[keep]]))
                y = train.labels.viral[idx]
            x = self._features_at(train, g)[idx]
            model = LogisticRegression(class_weight="balanced", max_iter=200)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(x, y)
            self.models.append(model)

    def decide(self, test: Inputs) -> tuple[FloatArray, FloatArray]:
        """Probability of virality and the balanced 0.5 cut."""
        n, n_grid = test.sizes.shape
        prob = np.zeros((n, n_grid))
        for g, model in enumerate(self.models):
            if model is not None and n:
                prob[:, g] = model.predict_proba(self._features_at(test, g))[:, 1]
        return prob, np.full(n_grid, 0.5)


def seismic_kernel_integral(age_hours: FloatArray, s0_hours: float, theta: float) -> FloatArray:
    """Integral of SEISMIC's memory kernel from 0 to ``age``: the share of reactions so far.

    phi(s) = c for s <= s0 and c (s / s0)^-(1 + theta) after, normalised to one.
    """
    c = 1.0 / (s0_hours * (1.0 + 1.0 / theta))
    age = np.maximum(age_hours, 0.0)
    early = c * np.minimum(age, s0_hours)
    late = np.where(
        age > s0_hours,
        c * s0_hours / theta * (1.0 - np.power(np.maximum(age, s0_hours) / s0_hours, -theta)),
        0.0,
    )
    return early + late


def fit_seismic_kernel(delays_hours: FloatArray) -> tuple[float, float]:
    """``(s0, theta)`` of SEISMIC's kernel by maximum likelihood on reaction delays.

    The kernel is a density: flat up to ``s0``, a power law of exponent ``-(1 + theta)``
    after. For each ``s0`` on a grid of the delays' quantiles the tail exponent is
    found by a bounded 1-D search of the likelihood; the pair with the highest
    likelihood is kept, as the paper calibrates its kernel on its own data.
    """
    from scipy.optimize import minimize_scalar

    d = np.asarray(delays_hours, dtype=np.float64)
    d = np.maximum(d[np.isfinite(d)], 1e-3)
    if d.size < 10:
        raise DegenerateTraining("seismic: too few shares to calibrate the kernel")
    best = (-np.inf, 5.0 / 60.0, 0.242)
    n = d.size
    for s0 in np.unique(np.quantile(d, [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5])):
        tail = np.log(d[d > s0] / s0)

        def neg_loglik(theta: float, s0: float = s0, tail: FloatArray = tail) -> float:
            c = 1.0 / (s0 * (1.0 + 1.0 / theta))
            return float(-(n * np.log(c) - (1.0 + theta) * tail.sum()))

        res = minimize_scalar(neg_loglik, bounds=(1e-3, 20.0), method="bounded")
        if -res.fun > best[0]:
            best = (-float(res.fun), float(s0), float(res.x))
    return best[1], best[2]


# Grids the scaling factors alpha and gamma are calibrated on, per decision time.
_SCALE_GRID = np.exp(np.linspace(np.log(0.05), np.log(5.0), 16))


@dataclass
class Seismic:
    """SEISMIC (Zhao et al. 2015): branching-process prediction of the final size.

    Infectiousness p_t = R_t / sum_i n_i Phi(t - t_i) over the artist and every sharer
    so far (n_i their follower counts); predicted final size
    R_t + alpha p_t (A_t - E_t) / (1 - gamma p_t n*), where A_t - E_t is the audience not
    yet exposed and n* the mean follower count of sharers in the training data. As the
    paper prescribes, the kernel (s0, theta) and the scaling factors (alpha_t, gamma_t,
    per decision time, by least squares on log final sizes) are calibrated on the
    training folds, and a cascade is predicted only once it has ``min_shares``
    shares (before that, its size so far). A prediction never exceeds the reactions the
    unexposed audience allows (R_t + A_t - E_t), which also bounds a supercritical
    process, so every cascade is ranked by its predicted final size.
    """

    name: str = "seismic"
    s0_hours: float = 5.0 / 60.0
    theta: float = 0.242
    alpha: FloatArray | None = None
    gamma: FloatArray | None = None
    n_star: float = 1.0
    min_shares: int = 5

    def fit(self, train: Inputs) -> None:
        """Calibrate n*, the kernel and the scaling factors on the training cascades."""
        if train.event_followers is None:
            raise DegenerateTraining("seismic: resharers' follower counts are missing")
        if train.event_followers.size == 0:
            raise DegenerateTraining("seismic: no share in the training data")
        self.n_star = float(np.mean(train.event_followers))
        self.s0_hours, self.theta = fit_seismic_kernel(train.cascades.times)
        final = np.log1p(train.cascades.final_sizes().astype(np.float64))
        n_grid = train.grid.times.shape[0]
        self.alpha = np.ones(n_grid)
        self.gamma = np.ones(n_grid)
        a = _SCALE_GRID[:, None, None]
        g_ = _SCALE_GRID[None, :, None]
        for g, (r, p, rest) in enumerate(self._terms(train)):
            use = (r >= self.min_shares) & train.labels.labeled
            if use.sum() < 5:
                continue
            pred = _bounded(r[use], p[use], rest[use], a, g_, self.n_star)
            err = ((np.log1p(pred) - final[use]) ** 2).mean(axis=-1)
            i, j = np.unravel_index(int(np.argmin(err)), err.shape)
            self.alpha[g], self.gamma[g] = _SCALE_GRID[i], _SCALE_GRID[j]

    def predicted_final(self, test: Inputs) -> FloatArray:
        """Predicted final size at every decision time."""
        if self.alpha is None or self.gamma is None:
            raise DegenerateTraining("seismic: not fitted")
        c = test.cascades
        out = np.zeros((c.n, test.grid.times.shape[0]))
        for g, (r, p, rest) in enumerate(self._terms(test)):
            pred = _bounded(r, p, rest, self.alpha[g], self.gamma[g], self.n_star)
            out[:, g] = np.where(r >= self.min_shares, pred, r)
        return out

    def _terms(self, data: Inputs) -> Iterator[tuple[FloatArray, FloatArray, FloatArray]]:
        """Per decision time: size so far R_t, infectiousness p_t, unexposed audience."""
        if data.event_followers is None or data.artist_followers is None:
            raise DegenerateTraining("seismic: resharers' follower counts are missing")
        c = data.cascades
        cidx = c.cascade_of_event
        total_aud = data.artist_followers + np.zeros(c.n)
        for g, t in enumerate(data.grid.times):
            seen = c.times <= t
            exp_ev = data.event_followers * seismic_kernel_integral(
                t - c.times, self.s0_hours, self.theta
            )
            exposure = data.artist_followers * seismic_kernel_integral(
                np.full(c.n, t), self.s0_hours, self.theta
            ) + np.bincount(cidx[seen], weights=exp_ev[seen], minlength=c.n)
            audience = total_aud + np.bincount(
                cidx[seen], weights=data.event_followers[seen], minlength=c.n
            )
            r = data.sizes[:, g].astype(np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                p = np.where(exposure > 0, r / exposure, 0.0)
            yield r, p, np.maximum(audience - exposure, 0.0)

    def decide(self, test: Inputs) -> tuple[FloatArray, FloatArray]:
        """Log predicted final size; viral when it reaches the threshold's."""
        pred = self.predicted_final(test)
        return np.log1p(pred), np.full(pred.shape[1], np.log1p(test.labels.threshold))


def _bounded(
    r: FloatArray,
    p: FloatArray,
    rest: FloatArray,
    alpha: FloatArray | float,
    gamma: FloatArray | float,
    n_star: float,
) -> FloatArray:
    """SEISMIC's final size, at most the size so far plus the unexposed audience."""
    denom = 1.0 - gamma * p * n_star
    with np.errstate(divide="ignore", invalid="ignore"):
        more = np.where(denom > 0, alpha * p * rest / denom, rest)
    return np.asarray(r + np.minimum(more, rest), dtype=np.float64)


@dataclass(frozen=True)
class SansnetCovariates:
    """SANSNET's covariates beside the log size (:func:`sansnet.covariates`) and the
    look-ahead of its survival score (:meth:`sansnet.SansnetModel.cumulative_hazard`)."""

    rate_hours: float = 0.0
    gap: bool = False
    age: bool = False
    lookahead_hours: float = 6.0

    def __str__(self) -> str:
        parts = [f"rate {self.rate_hours:g} h"] if self.rate_hours else []
        parts += ["gap"] * self.gap + ["size x age"] * self.age
        covariates = "size" + "".join(f" + {p}" for p in parts)
        return f"{covariates}, look-ahead {self.lookahead_hours:g} h"


# The candidates SANSNET's nested selection chooses from, simplest first.
SANSNET_CANDIDATES = (
    SansnetCovariates(),
    SansnetCovariates(lookahead_hours=2.0),
    SansnetCovariates(lookahead_hours=24.0),
    SansnetCovariates(rate_hours=6.0),
    SansnetCovariates(gap=True),
    SansnetCovariates(age=True),
    SansnetCovariates(rate_hours=6.0, gap=True, age=True),
)
# The false-alarm budget the selection reads each candidate at (the headline's).
SELECTION_ALPHA = 0.02


@dataclass
class Sansnet:
    """The SANSNET survival classifier in the harness (score = log cumulative hazard).

    With ``select`` (the default) its covariates are chosen on the training cascades
    alone: each of ``SANSNET_CANDIDATES`` is fitted on one half of them and read on
    the other (both ways), by its early-prediction advantage at a 2% false-alarm
    budget tuned on the half it was fitted on; the simplest of the best is kept and
    refitted on all of them. The held-out cascades are never read.
    """

    name: str = "sansnet"
    covariates: SansnetCovariates = SansnetCovariates()
    form: str = "path"
    pooled_hazard: bool = True
    select: bool = True
    model: sansnet.SansnetModel | None = None
    selection: dict[str, float] = field(default_factory=dict)

    def fit(self, train: Inputs) -> None:
        """Choose the covariates (with ``select``), fit the Cox model and the boundary."""
        if self.select:
            self.covariates = self._select(train)
        self.model = self._fit(train, self.covariates)

    def chosen(self) -> dict[str, object]:
        """The covariates fitted, and each candidate's lead in the selection (hours)."""
        return {"covariates": str(self.covariates), "selection_lead_hours": self.selection}

    def _fit(self, train: Inputs, cov: SansnetCovariates) -> sansnet.SansnetModel:
        return sansnet.fit(
            train.cascades,
            train.labels,
            train.grid,
            cov.lookahead_hours,
            cov.rate_hours,
            self.form,
            self.pooled_hazard,
            cov.gap,
            cov.age,
        )

    def _select(self, train: Inputs) -> SansnetCovariates:
        half = np.random.default_rng(0).permutation(train.cascades.n) % 2
        parts = [train.take(np.nonzero(half == h)[0]) for h in (0, 1)]
        self.selection = {}
        best: tuple[float, SansnetCovariates] | None = None
        for cov in SANSNET_CANDIDATES:
            try:
                lead = sum(self._lead(parts[h], parts[1 - h], cov) for h in (0, 1)) / 2.0
            except DegenerateTraining:
                continue
            self.selection[str(cov)] = round(lead, 4)
            if best is None or lead > best[0]:
                best = (lead, cov)
        return self.covariates if best is None else best[1]

    def _lead(self, fit_on: Inputs, read_on: Inputs, cov: SansnetCovariates) -> float:
        """Mean hours of warning before virality on ``read_on`` at the selection budget."""
        model = self._fit(fit_on, cov)
        own = margins_of(model.scores(fit_on.sizes), model.log_hazard_cut)
        tau = false_alarm_shift(own, fit_on.labels, SELECTION_ALPHA)
        flagged = margins_of(model.scores(read_on.sizes), model.log_hazard_cut) > tau
        first = detection_hours(flagged, read_on.labels, read_on.grid.times)
        viral = np.nonzero(read_on.labels.viral)[0]
        if viral.size == 0:
            raise DegenerateTraining("sansnet: no viral cascade to select covariates on")
        lead = read_on.labels.viral_hours[viral] - first[viral]
        return float(np.where(np.isfinite(lead), lead, 0.0).mean())

    def decide(self, test: Inputs) -> tuple[FloatArray, FloatArray]:
        """Log cumulative hazard, and the separation boundary as a cut on it."""
        if self.model is None:
            raise DegenerateTraining("sansnet: not fitted")
        return self.model.scores(test.sizes), self.model.log_hazard_cut

    def predicted_hours(self, test: Inputs) -> FloatArray:
        """Predicted hours after upload at which each cascade goes viral (NaN: not soon)."""
        if self.model is None:
            raise DegenerateTraining("sansnet: not fitted")
        return self.model.predicted_hours_to_viral(test.sizes)


MODEL_NAMES = ("sansnet", "crowdcast", "nodecount", "szabo_huberman", "logistic", "seismic")


def build(name: str, criterion: str | None = None) -> Model:
    """A fresh, unfitted model by name."""
    if name == "sansnet":
        return Sansnet()
    if name in ("crowdcast", "nodecount"):
        return ThresholdRanker(name, criterion or "f1")
    if name == "szabo_huberman":
        return SzaboHuberman()
    if name == "logistic":
        return HourlyLogistic()
    if name == "seismic":
        return Seismic()
    raise DegenerateTraining(f"models: unknown model {name!r} (known: {', '.join(MODEL_NAMES)})")
