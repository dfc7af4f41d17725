"""What the models learn and are judged on: labels, censoring and decision thresholds.

A cascade is *viral* when it reaches ``threshold`` shares; its virality time is the time
of that share. A cascade that has not reached the threshold but was observed for less
than the horizon is *censored*: its label is unknown, so it is never counted as a
negative (it still contributes its at-risk time to the survival model).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from schemas.errors import InputError
from scoring.virality.cascades import BoolArray, Cascades, FloatArray, decision_grid


class DegenerateTraining(InputError):
    """The training data cannot fit a model (one class only, no events, ...): says why."""


@dataclass(frozen=True)
class Labels:
    """Ground truth of a set of cascades for one threshold and horizon."""

    threshold: int
    horizon_hours: float
    viral_hours: FloatArray
    viral: BoolArray
    labeled: BoolArray

    @property
    def n_viral(self) -> int:
        """Number of viral cascades."""
        return int(self.viral.sum())

    @property
    def n_negative(self) -> int:
        """Number of fully observed cascades that did not go viral."""
        return int((self.labeled & ~self.viral).sum())


def make_labels(cascades: Cascades, threshold: int, horizon_hours: float) -> Labels:
    """Labels from the observed events: viral within the horizon, or censored."""
    t_v = cascades.virality_times(threshold)
    within = t_v <= np.minimum(cascades.observed_hours, horizon_hours)
    t_v = np.where(within, t_v, np.inf)
    labeled = within | (cascades.observed_hours >= horizon_hours)
    return Labels(threshold, horizon_hours, t_v, within, labeled)


def labels_from_truth(
    cascades: Cascades, viral: npt.ArrayLike, threshold: int, horizon_hours: float
) -> Labels:
    """Labels from an external truth (the simulator's viral flags) for every cascade.

    The virality time still comes from the observed events: the truth says *whether*,
    the timeline says *when*. A truly viral cascade whose threshold-th share lies past
    the horizon is treated as viral at the horizon's end (nothing before it leaks).
    """
    flags = np.asarray(viral, dtype=bool)
    if flags.shape != (cascades.n,):
        raise InputError("viral: need one truth flag per cascade")
    t_v = cascades.virality_times(threshold)
    t_v = np.where(flags, np.minimum(t_v, horizon_hours), np.inf)
    return Labels(threshold, horizon_hours, t_v, flags, np.ones(cascades.n, dtype=bool))


@dataclass(frozen=True)
class Grid:
    """Decision times ``step, 2*step, ..., horizon`` hours after upload."""

    step_hours: float
    horizon_hours: float

    @property
    def times(self) -> FloatArray:
        """The decision times."""
        return decision_grid(self.horizon_hours, self.step_hours)

    def index_at(self, hours: FloatArray) -> npt.NDArray[np.int64]:
        """Index of the last decision time at or before ``hours`` (-1 if none)."""
        return np.floor(np.asarray(hours) / self.step_hours + 1e-9).astype(np.int64) - 1


def alive_matrix(labels: Labels, grid: FloatArray) -> BoolArray:
    """``alive[c, g]``: cascade ``c`` has not gone viral by decision time ``g``."""
    return labels.viral_hours[:, None] > grid[None, :]


def best_threshold(
    scores: FloatArray, positive: BoolArray, criterion: str, *, lower_is_viral: bool = False
) -> float:
    """The cut on ``scores`` that best separates ``positive`` from the rest.

    ``criterion`` is ``balanced`` (minimise FN/P + FP/N, the class-balanced cost) or
    ``f1`` (maximise the F-measure). The rule is ``score >= cut`` (``<=`` with
    ``lower_is_viral``). Returns NaN when one class is missing: no cut is defined.
    """
    return best_cut(scores, positive, criterion, lower_is_viral=lower_is_viral)[0]


def best_cut(
    scores: FloatArray, positive: BoolArray, criterion: str, *, lower_is_viral: bool = False
) -> tuple[float, float]:
    """:func:`best_threshold` and the cost it reaches on these data (lower is better:
    the balanced cost, or minus the F-measure); ``(NaN, inf)`` when no cut is defined.

    The cost lets a model compare candidate scores (e.g. CrowdCast's activity-graph
    windows) by how well their best cut separates the training data.
    """
    n_pos = int(positive.sum())
    n_neg = int(positive.shape[0] - n_pos)
    if n_pos == 0 or n_neg == 0:
        return float("nan"), float("inf")
    key = scores if lower_is_viral else -scores
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    tp = np.concatenate([[0], np.cumsum(positive[order])])
    k = np.arange(tp.shape[0])
    # Only cuts between distinct values are realisable (ties go together).
    valid = np.ones(tp.shape[0], dtype=bool)
    valid[1:-1] = sorted_key[1:] != sorted_key[:-1]
    fp = k - tp
    if criterion == "balanced":
        cost = (n_pos - tp) / n_pos + fp / n_neg
    elif criterion == "f1":
        cost = -(2 * tp) / np.maximum(k + n_pos, 1)
    else:
        raise InputError(f"criterion: expected 'balanced' or 'f1', got {criterion!r}")
    cost = np.where(valid, cost, np.inf)
    best = int(np.argmin(cost))
    if best == 0:
        # Predict nothing: a cut beyond every score.
        edge = sorted_key[0] - 1.0
    else:
        edge = sorted_key[best - 1]
    return float(edge if lower_is_viral else -edge), float(cost[best])


def margins_of(scores: FloatArray, cuts: FloatArray) -> FloatArray:
    """``score - cut`` per cascade and time; ``-inf`` where no decision is defined."""
    with np.errstate(invalid="ignore"):
        m = scores - cuts[None, :]
    # inf - inf (an undefined cut met by an infinite score) decides nothing.
    return np.where(np.isnan(m), -np.inf, m)


def false_alarm_shift(margins: FloatArray, labels: Labels, alpha: float) -> float:
    """The shift ``tau`` such that flagging ``margin > tau`` at any decision time flags
    at most ``alpha`` of the never-viral cascades of ``labels`` (``margins`` are theirs).

    Ties are flagged together or not at all, so the budget is never exceeded. Raises
    :class:`DegenerateTraining` when the data hold no fully observed never-viral cascade.
    """
    negative = labels.labeled & ~labels.viral
    n_neg = int(negative.sum())
    if n_neg == 0:
        raise DegenerateTraining("no never-viral training cascade: no false-alarm budget")
    peak = np.sort(margins[negative].max(axis=1))[::-1]
    k = int(np.floor(alpha * n_neg + 1e-9))
    return float(peak[k]) if k < n_neg else -np.inf


def detection_hours(decisions: BoolArray, labels: Labels, grid_times: FloatArray) -> FloatArray:
    """The first decision time at which each cascade is flagged before it went viral
    (NaN: never)."""
    flagged = decisions & alive_matrix(labels, grid_times)
    ever = flagged.any(axis=1)
    return np.where(ever, grid_times[np.argmax(flagged, axis=1)], np.nan)
