"""One virality evaluation, from cascades and the follower graph to metrics and a table.

Shared by the scoring run (:mod:`.job`) and the benchmark: build the inputs every
model reads, predict out of fold, score every model, and explain what was skipped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scoring.virality import crowdcast
from scoring.virality.baselines import MODEL_NAMES, Inputs
from scoring.virality.cascades import Cascades, FloatArray, IntArray
from scoring.virality.evaluate import (
    FALSE_ALARM_RATES,
    HEADLINE_FALSE_ALARM_RATE,
    ModelRun,
    cross_predict,
    metrics,
    pairwise,
    table,
)
from scoring.virality.labels import Grid, Labels


@dataclass(frozen=True)
class Graph:
    """The follower graph as seen by the models (user ids, absolute hours or None)."""

    follower: IntArray
    followee: IntArray
    follow_abs_hours: FloatArray | None = None

    def followers_count(
        self, users: IntArray, at_abs_hours: FloatArray | None = None
    ) -> FloatArray:
        """Distinct followers of each user (repeated follow events count once).

        With ``at_abs_hours`` (one time per user, absolute hours) and follow times
        known, only follows made by then count: the audience as it stood.
        """
        if self.followee.size == 0:
            return np.zeros(users.shape[0])
        if at_abs_hours is None or self.follow_abs_hours is None:
            pairs = np.unique(np.stack([self.follower, self.followee], axis=1), axis=0)
            ids, counts = np.unique(pairs[:, 1], return_counts=True)
            pos = np.clip(np.searchsorted(ids, users), 0, ids.size - 1)
            return np.where(ids[pos] == users, counts[pos], 0).astype(np.float64)
        # The first follow of each pair, then per followee its sorted follow times.
        order = np.lexsort((self.follow_abs_hours, self.follower, self.followee))
        dst, src = self.followee[order], self.follower[order]
        t = self.follow_abs_hours[order]
        first = np.ones(dst.shape[0], dtype=bool)
        first[1:] = (dst[1:] != dst[:-1]) | (src[1:] != src[:-1])
        dst, t = dst[first], t[first]
        o = np.lexsort((t, dst))
        dst, t = dst[o], t[o]
        # Merge the queries into the sorted follows (a follow at the query time counts):
        # follows before a query in that order, minus those of smaller user ids.
        n_f = dst.shape[0]
        all_dst = np.concatenate([dst, users])
        all_t = np.concatenate([t, at_abs_hours])
        kind = np.concatenate([np.zeros(n_f, np.int8), np.ones(users.shape[0], np.int8)])
        merged = np.lexsort((kind, all_t, all_dst))
        follows_upto = np.cumsum(kind[merged] == 0)
        where = np.empty(merged.shape[0], dtype=np.int64)
        where[merged] = np.arange(merged.shape[0])
        counts = follows_upto[where[n_f:]] - np.searchsorted(dst, users, side="left")
        return counts.astype(np.float64)


@dataclass
class Evaluation:
    """Everything a run reports."""

    data: Inputs
    runs: dict[str, ModelRun]
    metrics: dict[str, Any]
    table: str
    distance: dict[str, Any]
    durations: dict[str, float] = field(default_factory=dict)


def prepare(
    cascades: Cascades,
    labels: Labels,
    grid: Grid,
    graph: Graph,
    *,
    ranks: crowdcast.RankLookup | None = None,
    upload_abs_hours: FloatArray | None = None,
    with_crowdcast: bool = True,
    min_nodes_estimate: int = 30,
    crowdcast_windows: tuple[float, ...] = crowdcast.WINDOWS_HOURS,
) -> tuple[Inputs, dict[str, Any]]:
    """The models' inputs: sizes on the grid, CrowdCast scores of every activity-graph
    window in ``crowdcast_windows`` (hours; ``inf``: all shares so far), audiences for
    SEISMIC. The AverageDistance estimate is reported on the first window's graphs."""
    sizes = cascades.size_matrix(grid.times)
    report = crowdcast.DistanceReport()
    cc = None
    if with_crowdcast:
        table: crowdcast.RankLookup | crowdcast.RankSnapshots
        if ranks is not None:
            table = ranks
        elif upload_abs_hours is not None and graph.follow_abs_hours is not None:
            # No cache given: rebuild it as it stood when each track was uploaded.
            table = crowdcast.pagerank_snapshots(
                graph.follower,
                graph.followee,
                graph.follow_abs_hours,
                float(upload_abs_hours.min()) if upload_abs_hours.size else 0.0,
                float(upload_abs_hours.max()) if upload_abs_hours.size else 0.0,
            )
        else:
            users, rank = crowdcast.pagerank(graph.follower, graph.followee)
            table = crowdcast.RankLookup(users, rank)
        parents = crowdcast.activity_parents(
            cascades,
            graph.follower,
            graph.followee,
            graph.follow_abs_hours,
            upload_abs_hours,
        )
        cc = np.stack(
            [
                crowdcast.features(
                    cascades,
                    parents,
                    table,
                    grid.times,
                    window_hours=w,
                    snapshot_hours=upload_abs_hours,
                    min_nodes_estimate=min_nodes_estimate,
                    report=report if i == 0 else None,
                ).score
                for i, w in enumerate(crowdcast_windows)
            ]
        )
    event_at = artist_at = None
    if upload_abs_hours is not None and graph.follow_abs_hours is not None:
        # Audiences as they stood: a sharer's followers when they shared, the artist's
        # at upload (SEISMIC reads them; later follows are not known at prediction time).
        artist_at = upload_abs_hours
        event_at = upload_abs_hours[cascades.cascade_of_event] + cascades.times
    data = Inputs(
        cascades=cascades,
        labels=labels,
        grid=grid,
        sizes=sizes,
        crowdcast=cc,
        crowdcast_windows=tuple(crowdcast_windows) if cc is not None else (),
        event_followers=graph.followers_count(cascades.users, event_at),
        artist_followers=graph.followers_count(cascades.artists, artist_at),
    )
    return data, report.summary()


def evaluate(
    data: Inputs,
    distance: dict[str, Any],
    *,
    models: tuple[str, ...] = MODEL_NAMES,
    folds: int = 5,
    seed: int = 0,
    eval_hours: tuple[float, ...] = (1, 3, 6, 12, 24),
    coverage_k: tuple[int, ...] = (10, 50, 100),
    before_hours: tuple[float, ...] = (1, 2, 4, 8, 12, 24),
    headline_hour: float = 6,
    criteria: dict[str, str] | None = None,
    false_alarm_rate: float = HEADLINE_FALSE_ALARM_RATE,
    split: IntArray | None = None,
) -> Evaluation:
    """Cross-validated predictions and metrics of every model, plus the printed table.

    With ``split`` (see :func:`~scoring.virality.evaluate.temporal_split`) the models
    are fitted on the cascades marked ``-1`` and everything is reported on the others
    only: the returned evaluation's data and runs are the held-out cascades'.
    """
    names = [m for m in models if m != "crowdcast" or data.crowdcast is not None]
    t0 = time.perf_counter()
    alphas = tuple(sorted({*FALSE_ALARM_RATES, false_alarm_rate}))
    runs = cross_predict(
        data, names, k=folds, seed=seed, criteria=criteria, alphas=alphas, split=split
    )
    elapsed = time.perf_counter() - t0
    n_train = data.cascades.n
    if split is not None:
        held = np.flatnonzero(split >= 0)
        n_train -= held.size
        data = data.take(held)
        runs = {name: run.take(held) for name, run in runs.items()}
    lab = data.labels
    per_model = {
        name: metrics(
            run,
            lab,
            data.grid.times,
            data.grid.step_hours,
            eval_hours=list(eval_hours),
            coverage_k=list(coverage_k),
            before_hours=list(before_hours),
            headline_alpha=false_alarm_rate,
        )
        for name, run in runs.items()
    }
    for name, adv in pairwise(runs, lab, data.grid.times, false_alarm_rate).items():
        per_model[name]["epa_pairwise"] = adv
    problems = []
    n_no_shares = int((data.cascades.final_sizes() == 0).sum())
    if n_no_shares:
        problems.append(f"{n_no_shares} tracks have no reposts: kept as never-viral cascades")
    if lab.n_viral == 0 or lab.n_negative == 0:
        problems.append(
            f"a single class: {lab.n_viral} viral and {lab.n_negative} fully observed non-viral"
            " cascades; classifiers that need both are skipped, metrics are degenerate"
        )
    censored = int((~lab.labeled).sum())
    if censored:
        problems.append(
            f"{censored} cascades are censored (younger than the horizon and not yet viral):"
            " excluded from labels, kept as at-risk time in the survival fit"
        )
    summary: dict[str, Any] = {
        "cascades": data.cascades.n,
        "viral": lab.n_viral,
        "negative": lab.n_negative,
        "censored": censored,
        "threshold": lab.threshold,
        "horizon_hours": lab.horizon_hours,
        "step_hours": data.grid.step_hours,
        "folds": folds if split is None else "split",
        "trained_only": n_train if split is not None else 0,
        "average_distance_estimate": distance,
        "models": per_model,
        "problems": problems,
    }
    text = table(per_model, headline_hour, before_hours[0], coverage_k[0])
    summary["table"] = text
    return Evaluation(data, runs, summary, text, distance, {"cross_predict_s": elapsed})
