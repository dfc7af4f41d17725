"""The virality scoring run: read crawled timelines, evaluate every model, write scores.

It reads tracks, repost (optionally like) events, follow events and the PageRank
cache through :mod:`.store` (when there is no cache it is recomputed weekly from
``follows`` so that each track reads the table of its upload), runs
:mod:`.pipeline`, and returns ``virality_scores`` rows: for
every track, model and prediction hour, the out-of-fold score and decision (a track
is always scored by a model that never saw it). Labels come from the data itself: a
track is viral once it reached ``threshold`` shares within ``horizon_hours``.

Bad input never crashes the run: no tracks or no shares at all end it ``failed`` with
the reason; a single class or censored-only data leave the models that cannot learn
from it skipped, with the reason in ``metrics.models.<name>.problems``; if no model
can run, the run fails saying why.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from scoring.registry import ScoringModel
from scoring.runs import CannotScore, ResultRows, ScoreResult
from scoring.virality import crowdcast, pipeline, store
from scoring.virality.baselines import MODEL_NAMES
from scoring.virality.cascades import from_events
from scoring.virality.labels import Grid, make_labels

VERSION = "1.0"

# Scores are rankings; where one diverges (SANSNET's log cumulative hazard of a cascade
# already certain to go viral) it is stored at this bound, so that SQL aggregates over
# the column stay finite.
SCORE_BOUND = 1e6

HOUR_S = 3600.0


class ViralityParams(BaseModel):
    """Parameters of a virality run."""

    model_config = ConfigDict(extra="forbid")

    threshold: int = Field(default=25, ge=2, description="shares that make a track viral")
    horizon_hours: float = Field(default=240.0, gt=0, description="how long a cascade is followed")
    step_hours: float = Field(default=1.0, gt=0, description="spacing of decision times")
    folds: int = Field(default=5, ge=2, le=20, description="cross-validation folds (by track)")
    seed: int = 0
    models: list[str] = Field(default_factory=lambda: list(MODEL_NAMES))
    include_likes: bool = Field(default=False, description="count likes as shares too")
    write_hours: list[float] = Field(
        default_factory=lambda: [1.0, 6.0, 24.0], description="prediction hours written"
    )
    eval_hours: list[float] = Field(default_factory=lambda: [1.0, 3.0, 6.0, 12.0, 24.0])
    headline_hour: float = 6.0
    crowdcast_criterion: str = Field(default="f1", pattern="^(f1|balanced)$")
    min_nodes_estimate: int = Field(default=30, ge=3)


def _col(rows: list[asyncpg.Record], key: str, dtype: type) -> np.ndarray:
    return np.asarray([r[key] for r in rows], dtype=dtype)


async def compute(conn: asyncpg.Connection, params: dict[str, Any]) -> ScoreResult:
    """Read, evaluate and score (see the module doc); writes nothing itself."""
    p = ViralityParams.model_validate(params)
    t0 = time.perf_counter()
    raw = await store.read(conn, p.include_likes)
    read_s = time.perf_counter() - t0
    if not raw["tracks"]:
        raise CannotScore("no tracks with an upload time: nothing to score")
    if not raw["shares"]:
        raise CannotScore("no repost events: every track has an empty cascade, nothing to learn")
    track_ids = _col(raw["tracks"], "id", np.int64)
    artists = _col(raw["tracks"], "user_id", np.int64)
    upload = _col(raw["tracks"], "up", np.float64)
    as_of = float(raw["as_of"]) if raw["as_of"] is not None else float(datetime.now().timestamp())
    shares = raw["shares"]
    st = _col(shares, "track_id", np.int64)
    pos = np.clip(np.searchsorted(track_ids, st), 0, track_ids.size - 1)
    hours = (_col(shares, "t", np.float64) - upload[pos]) / HOUR_S
    observed = np.clip((as_of - upload) / HOUR_S, 0.0, p.horizon_hours)
    cascades = from_events(
        track_ids, artists, st, _col(shares, "user_id", np.int64), hours, observed
    )
    labels = make_labels(cascades, p.threshold, p.horizon_hours)
    fol = raw["follows"]
    graph = pipeline.Graph(
        _col(fol, "follower_id", np.int64),
        _col(fol, "followee_id", np.int64),
        _col(fol, "t", np.float64) / HOUR_S if fol else None,
    )
    ranks = None
    if raw["ranks"]:
        ranks = crowdcast.RankLookup(
            _col(raw["ranks"], "user_id", np.int64), _col(raw["ranks"], "pagerank", np.float64)
        )
    grid = Grid(p.step_hours, p.horizon_hours)
    t1 = time.perf_counter()
    data, distance = pipeline.prepare(
        cascades,
        labels,
        grid,
        graph,
        ranks=ranks,
        upload_abs_hours=upload / HOUR_S,
        with_crowdcast="crowdcast" in p.models and graph.follower.size > 0,
        min_nodes_estimate=p.min_nodes_estimate,
    )
    prep_s = time.perf_counter() - t1
    ev = pipeline.evaluate(
        data,
        distance,
        models=tuple(p.models),
        folds=p.folds,
        seed=p.seed,
        eval_hours=tuple(p.eval_hours),
        headline_hour=p.headline_hour,
        criteria={"crowdcast": p.crowdcast_criterion},
    )
    metrics = ev.metrics
    metrics["dropped_untimed_shares"] = raw["untimed_shares"]
    metrics["untimed_follows"] = raw["untimed_follows"]
    metrics["pagerank_source"] = (
        "user_graph_stats" if ranks is not None else "computed from follows"
    )
    if "crowdcast" in p.models and data.crowdcast is None:
        metrics["models"]["crowdcast"] = {
            "skipped": True,
            "problems": ["no follow events: the activity graphs cannot be built"],
        }
    usable = [name for name, run in ev.runs.items() if run.decisions is not None]
    if not usable:
        reasons = sorted({pr.split(": ", 1)[-1] for run in ev.runs.values() for pr in run.problems})
        raise CannotScore("no model could be trained: " + "; ".join(reasons))
    records = []
    gidx = grid.index_at(np.asarray(p.write_hours))
    for name in usable:
        run = ev.runs[name]
        assert run.scores is not None and run.decisions is not None
        for h, g in zip(p.write_hours, gidx.tolist(), strict=True):
            if g < 0 or g >= grid.times.shape[0]:
                continue
            pred_h = run.hours_to_viral[:, g] if run.hours_to_viral is not None else None
            for i in range(cascades.n):
                score = float(run.scores[i, g])
                ph = None
                if pred_h is not None and run.decisions[i, g] and np.isfinite(pred_h[i]):
                    ph = float(pred_h[i])
                records.append(
                    (
                        int(cascades.track_ids[i]),
                        name,
                        float(h),
                        float(np.clip(np.nan_to_num(score), -SCORE_BOUND, SCORE_BOUND)),
                        bool(run.decisions[i, g]),
                        ph,
                    )
                )
    return ScoreResult(
        metrics=metrics,
        rows=[
            ResultRows(
                "virality_scores",
                (
                    "track_id",
                    "model",
                    "hours_after_upload",
                    "score",
                    "predicted_viral",
                    "predicted_hours_to_viral",
                ),
                records,
            )
        ],
        durations={"read_s": read_s, "prepare_s": prep_s, **ev.durations},
    )


MODEL = ScoringModel(
    name="virality",
    version=VERSION,
    description="CrowdCast and SANSNET virality prediction with the papers' baselines",
    params=ViralityParams,
    compute=compute,
)
