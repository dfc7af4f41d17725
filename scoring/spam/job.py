"""The ``spam`` scoring model: study and behaviour features, K-Means, named, MLP."""

from __future__ import annotations

import time
from collections import Counter
from typing import Annotated, Any

import asyncpg
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from scoring.registry import ScoringModel
from scoring.runs import CannotScore, ResultRows, ScoreResult
from scoring.spam import core, store

VERSION = "spam-2"
UNSCORABLE_SAMPLE = 100


class SpamRunParams(BaseModel):
    """Parameters of a spam run (see :class:`scoring.spam.core.SpamParams`)."""

    model_config = ConfigDict(extra="forbid")

    k_min: int = Field(default=2, ge=2, le=50)
    k_max: int = Field(default=15, ge=2, le=50, description="largest k tried for the elbow")
    users_per_cluster: int = Field(
        default=200, ge=10, le=1_000_000, description="users per named cluster (finer k)"
    )
    k_label_max: int = Field(default=100, ge=2, le=1000, description="most named clusters")
    correlation_threshold: float = Field(default=0.9, gt=0, le=1)
    test_size: float = Field(default=0.25, gt=0, lt=1, description="held-out share for MLP")
    per_class: int = Field(default=3000, ge=10, le=1_000_000, description="balanced rows")
    hidden: list[Annotated[int, Field(ge=1, le=1024)]] = Field(
        default=[32, 16], min_length=1, max_length=5, description="MLP hidden layer sizes"
    )
    max_iter: int = Field(default=300, ge=10, le=10_000)
    seed: int = 0


def _report(model: core.SpamModel, features: core.Features, ids: np.ndarray) -> dict[str, Any]:
    kinds = Counter(k for k in model.kind if k is not None)
    return {
        "users_scored": int(features.scorable.sum()),
        "users_unscorable": features.unscorable_reasons,
        "unscorable_ids_sample": ids[~features.scorable][:UNSCORABLE_SAMPLE].tolist(),
        "feature_selection": {
            "selected": model.selection.selected,
            "dropped": model.selection.dropped,
            "correlations": model.selection.correlations,
        },
        "elbow": {"k": model.k, "inertias": dict(zip(model.ks, model.inertias, strict=True))},
        "named_clusters": model.k_label,
        "automation_ceilings": model.reference.ceiling,
        "reference_users": model.reference.contributors,
        "groups": {g: int((model.predicted == i).sum()) for i, g in enumerate(model.groups)},
        "clusters": [
            {"cluster": i, "name": name, "size": size, "centroid": centroid}
            for i, (name, size, centroid) in enumerate(
                zip(model.cluster_names, model.cluster_sizes, model.centroids, strict=True)
            )
        ],
        "mlp": {
            "held_out_accuracy": model.mlp_accuracy,
            "converged": model.mlp_converged,
            "train_rows_balanced": model.train_size,
            "test_rows": model.test_size,
        },
        "flagged": int(model.is_spam.sum()),
        "flagged_by_kind": dict(kinds),
    }


async def compute(conn: asyncpg.Connection, params: dict[str, Any]) -> ScoreResult:
    """Read users, build features, fit the model and shape ``spam_scores`` rows."""
    p = SpamRunParams.model_validate(params)
    if p.k_max < p.k_min:
        raise CannotScore(f"params: k_max ({p.k_max}) is below k_min ({p.k_min})")
    durations: dict[str, float] = {}
    t = time.perf_counter()
    inp = await store.read_input(conn)
    durations["read_s"] = time.perf_counter() - t
    if len(inp) == 0:
        raise CannotScore("no users are crawled")
    t = time.perf_counter()
    features = core.build_features(inp)
    if not features.scorable.any():
        why = "; ".join(f"{n} users: {r}" for r, n in features.unscorable_reasons.items())
        raise CannotScore(f"no user can be scored ({why})")
    try:
        model = core.fit(
            features,
            core.SpamParams(
                k_min=p.k_min,
                k_max=p.k_max,
                users_per_cluster=p.users_per_cluster,
                k_label_max=p.k_label_max,
                correlation_threshold=p.correlation_threshold,
                test_size=p.test_size,
                per_class=p.per_class,
                hidden=tuple(p.hidden),
                max_iter=p.max_iter,
                seed=p.seed,
            ),
        )
    except ValueError as exc:
        raise CannotScore(f"cannot fit the spam model: {exc}") from exc
    durations["fit_s"] = time.perf_counter() - t
    ids = inp.user_id[features.scorable]
    rows = ResultRows("spam_scores", store.SPAM_SCORES_COLUMNS, store.spam_rows(ids, model))
    metrics = _report(model, features, inp.user_id)
    metrics["probability_mean"] = float(np.mean(model.probability))
    return ScoreResult(metrics=metrics, rows=[rows], durations=durations)


MODEL = ScoringModel(
    name="spam",
    version=VERSION,
    description="K-Means (elbow) over profile and graph features, MLP on cluster labels",
    params=SpamRunParams,
    compute=compute,
)
