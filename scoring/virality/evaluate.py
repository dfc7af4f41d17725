"""The evaluation harness: out-of-fold predictions for every model, and the metrics.

Cascades are split into folds *by track*; each fold is predicted by models fitted on
the other folds, and every decision at time ``t`` reads only shares up to ``t``.
Metrics (over labeled cascades, i.e. viral or observed for the whole horizon):

* at each evaluation hour, over cascades not yet viral then: precision, recall,
  F-measure, fallout (false-positive rate) and breakout coverage@k (share of the
  cascades that will go viral found among the k highest scores), at each model's own
  operating point (its cuts, tuned on the training folds);
* recall ``h`` hours before virality: viral cascades flagged at the last decision time
  at or before ``T_viral - h`` (own operating point);
* detection and the **Early Prediction Advantage** (EPA), at a *matched false-alarm
  rate*. A cascade is detected at the first decision time before it went viral at
  which the model flags it. Flagging early is only an advantage if it is not bought
  with false alarms, so every model is compared at the same detection fallout
  ``alpha`` (the share of never-viral tracks flagged at any time of the horizon):
  each model's own cuts are moved by one constant, tuned on the *training folds'*
  in-sample scores so that at most ``alpha`` of the training never-viral tracks are
  ever flagged, and that rule is applied unchanged to the held-out fold. Then

  - ``epa_hours`` = mean over viral cascades of the lead ``T_viral - t_detect``
    (0 when not detected before virality): the area under the curve "recall h hours
    before virality" at false-alarm budget ``alpha``. A model that flags everything
    cannot meet any budget below 1 and detects nothing (EPA 0); an oracle that flags
    exactly the viral tracks at the first decision time has the largest EPA possible;
  - ``epa_hours_true_positives`` = the mean lead over the detected viral cascades;
  - ``epa_pairwise`` = SANSNET's paper-style advantage of one model over another:
    the mean of ``t_detect(other) - t_detect(model)`` over the viral cascades both
    detect (positive: this model is earlier), with the number of such cascades.

  The SANSNET paper (Subbian, Prakash and Adamic, WWW 2017) compares methods by how
  much earlier they flag cascades that do go viral; its full text was not available
  to us, so the exact wording of its EPA could not be checked. The matched budget is
  ours: it is what keeps a lead on false alarms from counting as an advantage.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scoring.virality.baselines import Inputs, Model, ThresholdRanker, build
from scoring.virality.cascades import BoolArray, FloatArray, IntArray
from scoring.virality.labels import (
    DegenerateTraining,
    Labels,
    alive_matrix,
    detection_hours,
    false_alarm_shift,
    margins_of,
)

FALSE_ALARM_RATES = (0.005, 0.01, 0.02, 0.05, 0.1)
HEADLINE_FALSE_ALARM_RATE = 0.02


@dataclass
class ModelRun:
    """Out-of-fold scores and decisions of one model, or why it could not run.

    ``margins`` is ``score - cut`` (the model's own decision is ``margin >= 0``);
    ``matched[alpha]`` are the decisions at the false-alarm budget ``alpha``, with the
    shift tuned on each fold's training data. ``windows`` holds, per fold, the
    activity-graph window (hours) a CrowdCast model chose at each decision time;
    ``choices``, per fold, what a model chose on its training folds (SANSNET's
    covariates).
    """

    name: str
    scores: FloatArray | None = None
    decisions: BoolArray | None = None
    margins: FloatArray | None = None
    matched: dict[float, BoolArray] = field(default_factory=dict)
    fit_s: float = 0.0
    hours_to_viral: FloatArray | None = None
    problems: list[str] = field(default_factory=list)
    windows: list[FloatArray] = field(default_factory=list)
    choices: list[dict[str, Any]] = field(default_factory=list)

    def take(self, idx: IntArray) -> ModelRun:
        """The predictions of the cascades ``idx`` only (fit time and problems kept)."""

        def rows(a: Any) -> Any:
            return None if a is None else a[idx]

        return ModelRun(
            self.name,
            rows(self.scores),
            rows(self.decisions),
            rows(self.margins),
            {a: m[idx] for a, m in self.matched.items()},
            self.fit_s,
            rows(self.hours_to_viral),
            list(self.problems),
            list(self.windows),
            list(self.choices),
        )


def folds(n: int, k: int, seed: int) -> IntArray:
    """A fold number for each of ``n`` cascades (a random split by track)."""
    return np.random.default_rng(seed).permutation(np.arange(n) % k)


def temporal_split(upload_hours: FloatArray, test_share: float) -> IntArray:
    """Train on the earlier uploads, test on the later ``test_share`` of them.

    Returns a split for :func:`cross_predict`: ``-1`` (training only) for the earlier
    tracks, ``0`` (the one held-out fold) for the later ones; ties at the boundary
    go to training. The models then predict tracks uploaded after everything they
    were fitted on, as a deployed model would.
    """
    if not 0.0 < test_share < 1.0:
        raise ValueError(f"test_share must be in (0, 1), got {test_share}")
    cut = np.quantile(upload_hours, 1.0 - test_share) if upload_hours.size else 0.0
    return np.where(upload_hours > cut, 0, -1).astype(np.int64)


def cross_predict(
    data: Inputs,
    names: list[str],
    k: int = 5,
    seed: int = 0,
    criteria: dict[str, str] | None = None,
    alphas: tuple[float, ...] = FALSE_ALARM_RATES,
    split: IntArray | None = None,
) -> dict[str, ModelRun]:
    """Fit every model on k-1 folds and predict the held-out fold, for every fold.

    ``split`` replaces the random folds: a fold number per cascade, ``-1`` for
    cascades only ever trained on (see :func:`temporal_split`); those get no
    prediction, so metrics must then be read on the held-out rows only.

    Besides its own decisions, every model gets the shift of its cuts that meets each
    false-alarm budget in ``alphas``, tuned on the training folds' in-sample scores
    (never on the held-out fold). A model that cannot be fitted on a fold (one class,
    no events, missing inputs) leaves that fold undecided (never viral) and records
    the reason; nothing raises.
    """
    fold = folds(data.cascades.n, k, seed) if split is None else split
    held_out = [int(f) for f in np.unique(fold) if f >= 0]
    n, n_grid = data.sizes.shape
    runs = {
        name: ModelRun(
            name,
            np.zeros((n, n_grid)),
            np.zeros((n, n_grid), dtype=bool),
            np.full((n, n_grid), -np.inf),
            {a: np.zeros((n, n_grid), dtype=bool) for a in alphas},
        )
        for name in names
    }
    failed = dict.fromkeys(names, 0)
    for f in held_out:
        train_idx, test_idx = np.nonzero(fold != f)[0], np.nonzero(fold == f)[0]
        train, test = data.take(train_idx), data.take(test_idx)
        for name in names:
            run = runs[name]
            model: Model = build(name, (criteria or {}).get(name))
            t0 = time.perf_counter()
            try:
                model.fit(train)
                run.fit_s += time.perf_counter() - t0
                scores, cuts = model.decide(test)
            except DegenerateTraining as exc:
                run.problems.append(f"fold {f}: {exc}")
                failed[name] += 1
                continue
            assert run.scores is not None and run.decisions is not None
            assert run.margins is not None
            margin = margins_of(scores, cuts)
            run.scores[test_idx] = scores
            run.margins[test_idx] = margin
            run.decisions[test_idx] = margin >= 0
            try:
                train_margin = margins_of(*model.decide(train))
                for a in alphas:
                    tau = false_alarm_shift(train_margin, train.labels, a)
                    run.matched[a][test_idx] = margin > tau
            except DegenerateTraining as exc:
                run.problems.append(f"fold {f}: matched false-alarm rate: {exc}")
            predicted = getattr(model, "predicted_hours", None)
            if predicted is not None:
                if run.hours_to_viral is None:
                    run.hours_to_viral = np.full((n, n_grid), np.nan)
                run.hours_to_viral[test_idx] = predicted(test)
            if isinstance(model, ThresholdRanker) and model.name == "crowdcast":
                run.windows.append(model.windows)
            chosen = getattr(model, "chosen", None)
            if chosen is not None:
                run.choices.append(chosen())
    for run in runs.values():
        if failed[run.name] == len(held_out):
            run.scores = run.decisions = run.margins = None
            run.matched = {}
    return runs


def early_prediction(
    decisions: BoolArray, labels: Labels, grid_times: FloatArray
) -> dict[str, Any]:
    """Detection precision/recall/fallout and EPA of one decision matrix (module doc)."""
    lab = labels.labeled
    first = detection_hours(decisions, labels, grid_times)
    ever = np.isfinite(first)
    viral_idx = np.nonzero(labels.viral)[0]
    t_v = labels.viral_hours[viral_idx]
    hit = ever[viral_idx]
    lead = np.where(hit, t_v - np.where(hit, first[viral_idx], 0.0), 0.0)
    return {
        "detection": prf(ever[lab], labels.viral[lab]),
        "epa_hours": float(lead.mean()) if viral_idx.size else None,
        "epa_hours_ci95": _bootstrap_ci(lead),
        "epa_hours_true_positives": float(lead[hit].mean()) if hit.any() else None,
    }


def recall_before_viral(
    decisions: BoolArray, labels: Labels, step_hours: float, before_hours: list[float]
) -> dict[str, dict[str, Any]]:
    """Share of viral cascades flagged ``h`` hours before they went viral, with a 95%
    bootstrap interval over the viral cascades (those younger than ``h`` at virality
    are left out)."""
    viral_idx = np.nonzero(labels.viral)[0]
    t_v = labels.viral_hours[viral_idx]
    out: dict[str, dict[str, Any]] = {}
    for h in before_hours:
        at = np.floor((t_v - h) / step_hours + 1e-9).astype(np.int64) - 1
        ok = at >= 0
        hits = decisions[viral_idx[ok], at[ok]].astype(np.float64)
        out[f"{h:g}"] = {
            "recall": float(hits.mean()) if hits.size else None,
            "ci95": _bootstrap_ci(hits),
            "cascades": int(hits.size),
        }
    return out


def f_measure_ci(
    pred: BoolArray, truth: BoolArray, rounds: int = 2000, seed: int = 0
) -> list[float] | None:
    """95% bootstrap interval of the F-measure of ``pred`` over resampled tracks.

    Resampling tracks only moves counts between the four confusion cells, so each
    round is one multinomial draw of the cells, not a resample of every track.
    """
    cells = np.array([(pred & truth).sum(), (pred & ~truth).sum(), (~pred & truth).sum(),
                      (~pred & ~truth).sum()], dtype=np.float64)  # fmt: skip
    n = int(cells.sum())
    if n < 2:
        return None
    draws = np.random.default_rng(seed).multinomial(n, cells / n, size=rounds).astype(float)
    tp, fp, fn = draws[:, 0], draws[:, 1], draws[:, 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(tp > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
    return [float(np.quantile(f, 0.025)), float(np.quantile(f, 0.975))]


def pairwise_advantage(
    first_a: FloatArray, first_b: FloatArray, labels: Labels
) -> dict[str, float | int | None]:
    """How much earlier A detects than B over the viral cascades both detect."""
    both = labels.viral & np.isfinite(first_a) & np.isfinite(first_b)
    diff = first_b[both] - first_a[both]
    return {
        "cascades": int(both.sum()),
        "mean_hours": float(diff.mean()) if diff.size else None,
        "earlier_share": float((diff > 0).mean()) if diff.size else None,
        "later_share": float((diff < 0).mean()) if diff.size else None,
    }


def prf(pred: BoolArray, truth: BoolArray) -> dict[str, float | int]:
    """Precision, recall, F-measure, fallout and the confusion counts of ``pred``."""
    tp = int((pred & truth).sum())
    fp = int((pred & ~truth).sum())
    fn = int((~pred & truth).sum())
    tn = int((~pred & ~truth).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    fallout = fp / (fp + tn) if fp + tn else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f_measure": f,
        "fallout": fallout,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def metrics(
    run: ModelRun,
    labels: Labels,
    grid_times: FloatArray,
    step_hours: float,
    *,
    eval_hours: list[float],
    coverage_k: list[int],
    before_hours: list[float],
    headline_alpha: float = HEADLINE_FALSE_ALARM_RATE,
) -> dict[str, Any]:
    """Every metric of one model's out-of-fold predictions (see the module doc)."""
    if run.scores is None or run.decisions is None:
        return {"skipped": True, "problems": run.problems}
    lab = labels.labeled
    alive = alive_matrix(labels, grid_times)
    out: dict[str, Any] = {"fit_s": run.fit_s, "problems": run.problems, "at_hour": {}}
    if run.choices:
        out["chosen_by_fold"] = run.choices
    # the decision-time column of each evaluation hour on the grid
    columns = {
        h: g
        for h in eval_hours
        if 0 <= (g := int(np.floor(h / step_hours + 1e-9)) - 1) < grid_times.shape[0]
    }
    for h, g in columns.items():
        rows = lab & alive[:, g]
        m: dict[str, Any] = prf(run.decisions[rows, g], labels.viral[rows])
        m["f_measure_ci95"] = f_measure_ci(run.decisions[rows, g], labels.viral[rows])
        order = np.argsort(-run.scores[rows, g], kind="stable")
        viral_rows = labels.viral[rows][order]
        total = max(int(viral_rows.sum()), 1)
        m["coverage"] = {str(k): float(viral_rows[:k].sum()) / min(total, k) for k in coverage_k}
        if run.windows:
            # JSON has no infinity: the whole activity graph is reported as null.
            m["window_hours_by_fold"] = [
                float(w[g]) if np.isfinite(w[g]) else None for w in run.windows
            ]
        out["at_hour"][f"{h:g}"] = m
    viral_idx = np.nonzero(labels.viral)[0]
    t_v = labels.viral_hours[viral_idx]
    recall_before: dict[str, float | None] = {}
    for h in before_hours:
        at = np.floor((t_v - h) / step_hours + 1e-9).astype(np.int64) - 1
        ok = at >= 0
        recall_before[f"{h:g}"] = (
            float(run.decisions[viral_idx[ok], at[ok]].mean()) if ok.any() else None
        )
    out["recall_before_viral"] = recall_before
    own = early_prediction(run.decisions, labels, grid_times)
    out["own_operating_point"] = {
        "detection": own["detection"],
        "lead_hours": own["epa_hours"],
        "lead_hours_true_positives": own["epa_hours_true_positives"],
    }
    out["matched_false_alarm"] = {}
    for a, dec in run.matched.items():
        # every figure again at the matched budget, where models compare fairly
        at_hour = {}
        for h, g in columns.items():
            rows = lab & alive[:, g]
            at_hour[f"{h:g}"] = {
                **prf(dec[rows, g], labels.viral[rows]),
                "f_measure_ci95": f_measure_ci(dec[rows, g], labels.viral[rows]),
            }
        out["matched_false_alarm"][f"{a:g}"] = {
            **early_prediction(dec, labels, grid_times),
            "recall_before_viral": recall_before_viral(dec, labels, step_hours, before_hours),
            "at_hour": at_hour,
        }
    head = out["matched_false_alarm"].get(f"{headline_alpha:g}")
    out["false_alarm_rate"] = headline_alpha
    out["detection"] = head["detection"] if head else own["detection"]
    out["epa_hours"] = head["epa_hours"] if head else None
    out["epa_hours_ci95"] = head["epa_hours_ci95"] if head else None
    out["epa_hours_true_positives"] = head["epa_hours_true_positives"] if head else None
    return out


def _bootstrap_ci(diff: FloatArray, rounds: int = 2000, seed: int = 0) -> list[float] | None:
    """95% percentile interval of the mean of ``diff`` over resampled cascades."""
    if diff.size < 2:
        return None
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, diff.size, size=(rounds, diff.size))].mean(axis=1)
    return [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))]


def pairwise(
    runs: dict[str, ModelRun], labels: Labels, grid_times: FloatArray, alpha: float
) -> dict[str, dict[str, dict[str, Any]]]:
    """``out[a][b]``: how much earlier ``a`` detects than ``b`` at the false-alarm budget.

    Besides :func:`pairwise_advantage`, the difference of the two EPAs (mean over viral
    cascades of lead(a) - lead(b), misses 0) with a paired bootstrap 95% interval over
    viral cascades: with a few dozen viral tracks, an EPA difference of an hour can be
    noise, and the interval says so.
    """
    first = {
        name: detection_hours(run.matched[alpha], labels, grid_times)
        for name, run in runs.items()
        if alpha in run.matched
    }
    viral = labels.viral
    lead = {
        name: np.where(np.isfinite(f[viral]), labels.viral_hours[viral] - f[viral], 0.0)
        for name, f in first.items()
    }
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for a, fa in first.items():
        out[a] = {}
        for b, fb in first.items():
            if b == a:
                continue
            diff = lead[a] - lead[b]
            out[a][b] = {
                **pairwise_advantage(fa, fb, labels),
                "epa_difference_hours": float(diff.mean()) if diff.size else None,
                "epa_difference_ci95": _bootstrap_ci(diff),
            }
    return out


def _num(value: Any, fmt: str) -> str:
    return format(value, fmt) if isinstance(value, int | float) else format("-", fmt.split(".")[0])


def table(
    results: dict[str, dict[str, Any]],
    hour: float,
    before: float,
    k: int,
    alpha: float = HEADLINE_FALSE_ALARM_RATE,
) -> str:
    """A fixed-width text table of the headline metrics, one row per model.

    Every figure is at the matched false-alarm rate ``alpha`` (decision cut-offs tuned
    on the training folds), coverage@k aside (a ranking measure, no cut-off): P/R/F at
    ``hour`` after upload, recall ``before`` hours before virality, EPA with its 95%
    bootstrap interval, and detection P/R/false alarms.
    """
    cols = [
        ("model", "<16"),
        (f"P@{hour:g}h", ">8"),
        ("R", ">7"),
        ("F", ">7"),
        ("fallout", ">9"),
        (f"cov@{k}", ">8"),
        (f"R-{before:g}h", ">8"),
        ("EPA h", ">8"),
        ("EPA 95% CI", ">16"),
        ("det P", ">7"),
        ("det R", ">7"),
        ("det FA", ">8"),
    ]
    head = "".join(format(name, spec) for name, spec in cols)
    lines = [f"at a matched false-alarm rate of {alpha:g}", head, "-" * len(head)]
    for name, m in results.items():
        if m.get("skipped"):
            lines.append(f"{name:<16}skipped: {'; '.join(m.get('problems', []))[:80]}")
            continue
        matched = m["matched_false_alarm"].get(f"{alpha:g}")
        if matched is None:
            lines.append(f"{name:<16}no decisions at this false-alarm rate")
            continue
        at = matched["at_hour"].get(f"{hour:g}", {})
        own = m["at_hour"].get(f"{hour:g}", {})
        ci = matched["epa_hours_ci95"]
        values = [
            at.get("precision"),
            at.get("recall"),
            at.get("f_measure"),
            at.get("fallout"),
            own.get("coverage", {}).get(str(k)),
            matched["recall_before_viral"].get(f"{before:g}", {}).get("recall"),
            matched["epa_hours"],
        ]
        fmts = [".3f", ".3f", ".3f", ".4f", ".3f", ".3f", ".2f"]
        cells = [_num(v, spec + f) for v, (_, spec), f in zip(values, cols[1:8], fmts, strict=True)]
        cells.append(format(f"{ci[0]:.2f}..{ci[1]:.2f}" if ci else "-", ">16"))
        det = matched["detection"]
        cells += [_num(det["precision"], ">7.3f"), _num(det["recall"], ">7.3f"),
                  _num(det["fallout"], ">8.4f")]  # fmt: skip
        lines.append(f"{name:<16}" + "".join(cells))
    return "\n".join(lines)
