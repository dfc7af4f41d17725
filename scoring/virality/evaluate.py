"""The evaluation harness: out-of-fold predictions for every model, and the metrics.

Cascades are split into folds *by track*; each fold is predicted by models fitted on
the other folds, and every decision at time ``t`` reads only shares up to ``t``.
Metrics (over labeled cascades, i.e. viral or observed for the whole horizon):

* at each evaluation hour, over cascades not yet viral then: precision, recall,
  F-measure, fallout (false-positive rate) and breakout coverage@k (share of the
  cascades that will go viral found among the k highest scores);
* recall ``h`` hours before virality: viral cascades flagged at the last decision time
  at or before ``T_viral - h``;
* detection: a cascade is flagged at the first decision time (before it went viral)
  where the model says viral; Early Prediction Advantage (EPA) = mean over viral
  cascades of the hours between that flag and virality (0 when never flagged in time),
  reported with the detection precision so that flagging everything does not pay.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scoring.virality.baselines import Inputs, Model, build
from scoring.virality.cascades import BoolArray, FloatArray, IntArray
from scoring.virality.labels import DegenerateTraining, Labels, alive_matrix


@dataclass
class ModelRun:
    """Out-of-fold scores and decisions of one model, or why it could not run."""

    name: str
    scores: FloatArray | None = None
    decisions: BoolArray | None = None
    fit_s: float = 0.0
    hours_to_viral: FloatArray | None = None
    problems: list[str] = field(default_factory=list)


def folds(n: int, k: int, seed: int) -> IntArray:
    """A fold number for each of ``n`` cascades (a random split by track)."""
    return np.random.default_rng(seed).permutation(np.arange(n) % k)


def cross_predict(
    data: Inputs,
    names: list[str],
    k: int = 5,
    seed: int = 0,
    criteria: dict[str, str] | None = None,
) -> dict[str, ModelRun]:
    """Fit every model on k-1 folds and predict the held-out fold, for every fold.

    A model that cannot be fitted on a fold (one class, no events, missing inputs)
    leaves that fold undecided (never viral) and records the reason; nothing raises.
    """
    fold = folds(data.cascades.n, k, seed)
    n, n_grid = data.sizes.shape
    runs = {
        name: ModelRun(name, np.zeros((n, n_grid)), np.zeros((n, n_grid), dtype=bool))
        for name in names
    }
    for f in range(k):
        train_idx, test_idx = np.nonzero(fold != f)[0], np.nonzero(fold == f)[0]
        train, test = data.take(train_idx), data.take(test_idx)
        for name in names:
            run = runs[name]
            model: Model = build(name, (criteria or {}).get(name))
            t0 = time.perf_counter()
            try:
                model.fit(train)
                run.fit_s += time.perf_counter() - t0
                scores, decisions = model.decide(test)
            except DegenerateTraining as exc:
                run.problems.append(f"fold {f}: {exc}")
                continue
            assert run.scores is not None and run.decisions is not None
            run.scores[test_idx] = scores
            run.decisions[test_idx] = decisions
            predicted = getattr(model, "predicted_hours", None)
            if predicted is not None:
                if run.hours_to_viral is None:
                    run.hours_to_viral = np.full((n, n_grid), np.nan)
                run.hours_to_viral[test_idx] = predicted(test)
    for run in runs.values():
        if len(run.problems) == k:
            run.scores = run.decisions = None
    return runs


def _prf(pred: BoolArray, truth: BoolArray) -> dict[str, float | int]:
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
) -> dict[str, Any]:
    """Every metric of one model's out-of-fold predictions (see the module doc)."""
    if run.scores is None or run.decisions is None:
        return {"skipped": True, "problems": run.problems}
    lab = labels.labeled
    alive = alive_matrix(labels, grid_times)
    out: dict[str, Any] = {"fit_s": run.fit_s, "problems": run.problems, "at_hour": {}}
    for h in eval_hours:
        g = int(np.floor(h / step_hours + 1e-9)) - 1
        if g < 0 or g >= grid_times.shape[0]:
            continue
        rows = lab & alive[:, g]
        m: dict[str, Any] = _prf(run.decisions[rows, g], labels.viral[rows])
        order = np.argsort(-run.scores[rows, g], kind="stable")
        viral_rows = labels.viral[rows][order]
        total = max(int(viral_rows.sum()), 1)
        m["coverage"] = {str(k): float(viral_rows[:k].sum()) / min(total, k) for k in coverage_k}
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
    flagged = run.decisions & alive
    ever: BoolArray = np.asarray(flagged.any(axis=1), dtype=bool)
    first = np.where(ever, np.argmax(flagged, axis=1), -1)
    lead = np.where(ever[viral_idx], t_v - grid_times[np.maximum(first[viral_idx], 0)], 0.0)
    detect = _prf(ever[lab], labels.viral[lab])
    out["detection"] = detect
    out["epa_hours"] = float(lead.mean()) if viral_idx.size else None
    out["epa_hours_true_positives"] = (
        float(lead[ever[viral_idx]].mean()) if ever[viral_idx].any() else None
    )
    return out


def _num(value: Any, fmt: str) -> str:
    return format(value, fmt) if isinstance(value, int | float) else format("-", fmt.split(".")[0])


def table(results: dict[str, dict[str, Any]], hour: float, before: float, k: int) -> str:
    """A fixed-width text table of the headline metrics, one row per model."""
    cols = [
        ("model", "<16"),
        (f"P@{hour:g}h", ">8"),
        ("R", ">7"),
        ("F", ">7"),
        ("fallout", ">9"),
        (f"cov@{k}", ">8"),
        (f"R-{before:g}h", ">8"),
        ("EPA h", ">8"),
        ("det P", ">7"),
        ("det R", ">7"),
    ]
    head = "".join(format(name, spec) for name, spec in cols)
    lines = [head, "-" * len(head)]
    for name, m in results.items():
        if m.get("skipped"):
            lines.append(f"{name:<16}skipped: {'; '.join(m.get('problems', []))[:80]}")
            continue
        at = m["at_hour"].get(f"{hour:g}", {})
        values = [
            at.get("precision"),
            at.get("recall"),
            at.get("f_measure"),
            at.get("fallout"),
            at.get("coverage", {}).get(str(k)),
            m["recall_before_viral"].get(f"{before:g}"),
            m["epa_hours"],
            m["detection"]["precision"],
            m["detection"]["recall"],
        ]
        fmts = [".3f", ".3f", ".3f", ".4f", ".3f", ".3f", ".2f", ".3f", ".3f"]
        cells = [_num(v, spec + f) for v, (_, spec), f in zip(values, cols[1:], fmts, strict=True)]
        lines.append(f"{name:<16}" + "".join(cells))
    return "\n".join(lines)
