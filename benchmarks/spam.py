"""Spam model against the simulator's ground truth (one run, one JSON object).

The world's users are rendered exactly as the simulated API serves them
(``simulator.render``), converted into the arrays :mod:`scoring.spam.core` takes, and
the planted spam (link spam, fake batches, follow-churn bots) is the truth. Targets:
precision >= 0.95 and recall >= 0.95.

``python -m benchmarks.spam [--seed S] [--users N]``
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime
from typing import Any

import numpy as np

from scoring.spam import core
from simulator import render
from simulator.world import World


def world_input(world: World) -> tuple[core.SpamInput, np.ndarray]:
    """The world's live core users as a :class:`SpamInput`, and the truth kind per user."""
    now = world.end_us
    ids = world.live_ids()
    users = [render.full_user(world, int(uid), now) for uid in ids.tolist()]
    profiles = [render.web_profiles(world, int(uid)) for uid in ids.tolist()]

    def counts(key: str) -> np.ndarray:
        return np.array(
            [np.nan if u.get(key) is None else float(u[key]) for u in users], dtype=np.float64
        )

    created = np.array(
        [datetime.fromisoformat(u["created_at"].replace("Z", "+00:00")).timestamp() for u in users]
    )
    f = world.follows
    live = np.zeros(world.core + 1, dtype=bool)
    live[ids] = True
    keep = live[f.src] & live[f.dst]
    key = f.src[keep] * (world.core + 1) + f.dst[keep]
    pairs, mult = np.unique(key, return_counts=True)
    recip, max_mult = core.graph_features(
        ids, pairs // (world.core + 1), pairs % (world.core + 1), mult
    )
    inp = core.SpamInput(
        user_id=ids,
        followers=counts("followers_count"),
        followings=counts("followings_count"),
        tracks=counts("track_count"),
        likes=counts("likes_count"),
        reposts=counts("reposts_count"),
        playlists=counts("playlist_count"),
        comments=counts("comments_count"),
        plan=[u["creator_subscription"]["product"]["id"] for u in users],
        description=[u["description"] for u in users],
        created_at_s=created,
        urls=[[w["url"] for w in ws] for ws in profiles],
        url_titles=[[w["title"] for w in ws] for ws in profiles],
        reciprocity=recip,
        max_multiplicity=max_mult.astype(np.float64),
    )
    truth = world.spam_kind[ids - 1].astype(np.int64)
    return inp, truth


KIND_OF_TRUTH = {1: "link", 2: "fake", 3: "churn"}


def evaluate(seed: int, users: int, params: core.SpamParams | None = None) -> dict[str, Any]:
    """Fit on the world of ``seed`` and score against its planted spam."""
    t0 = time.perf_counter()
    world = World.generate(seed, users)
    inp, truth = world_input(world)
    t_world = time.perf_counter() - t0
    t0 = time.perf_counter()
    features = core.build_features(inp)
    model = core.fit(features, params)
    t_fit = time.perf_counter() - t0
    truth = truth[features.scorable]
    flagged = model.is_spam
    precision, recall = core.precision_recall(flagged, truth > 0)
    caught = flagged & (truth > 0)
    kind_ok = [model.kind[i] == KIND_OF_TRUTH[int(truth[i])] for i in np.flatnonzero(caught)]
    per_kind = {
        KIND_OF_TRUTH[k]: {
            "planted": int((truth == k).sum()),
            "recall": float((flagged & (truth == k)).sum() / max(1, (truth == k).sum())),
        }
        for k in (1, 2, 3)
    }
    return {
        "seed": seed,
        "users": users,
        "scored_users": int(truth.shape[0]),
        "planted_spam": int((truth > 0).sum()),
        "flagged": int(flagged.sum()),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "targets": {"precision": 0.95, "recall": 0.95},
        "meets_targets": bool(precision >= 0.95 and recall >= 0.95),
        "kind_accuracy": round(float(np.mean(kind_ok)) if kind_ok else float("nan"), 4),
        "per_kind": per_kind,
        "k": model.k,
        "inertias": dict(zip(model.ks, [round(i, 1) for i in model.inertias], strict=True)),
        "clusters": dict(zip(model.cluster_names, model.cluster_sizes, strict=True)),
        "selected_features": model.selection.selected,
        "dropped_features": model.selection.dropped,
        "mlp_held_out_accuracy": round(model.mlp_accuracy, 4),
        "mlp_converged": model.mlp_converged,
        "world_s": round(t_world, 2),
        "fit_s": round(t_fit, 2),
    }


def main() -> None:
    """Evaluate and print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--users", type=int, default=20_000)
    args = parser.parse_args()
    print(json.dumps({"benchmark": "spam", **evaluate(args.seed, args.users)}, indent=2))


if __name__ == "__main__":
    main()
