"""What the fleet scored, compared with the simulator's ground truth.

The scoring runs never see the truth (it is never served); this module reads their
result rows back from the database and compares them with the world regenerated from
the seed: spam labels, viral flags, planted shock counts.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import numpy as np

from runtime import database


def binary_metrics(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float | int]:
    """Precision, recall, F-measure and fallout of boolean predictions."""
    predicted = predicted.astype(bool)
    actual = actual.astype(bool)
    tp = int(np.sum(predicted & actual))
    fp = int(np.sum(predicted & ~actual))
    fn = int(np.sum(~predicted & actual))
    tn = int(np.sum(~predicted & ~actual))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "n": tp + fp + fn + tn,
        "positives": tp + fn,
        "precision": precision,
        "recall": recall,
        "f_measure": f,
        "fallout": fp / (fp + tn) if fp + tn else 0.0,
    }


async def _latest(conn: asyncpg.Connection, model: str) -> int | None:
    run: int | None = await conn.fetchval(
        "SELECT max(id) FROM scoring_runs WHERE model = $1 AND state = 'done'", model
    )
    return run


async def evaluate_spam(conn: asyncpg.Connection, world: Any) -> dict[str, Any]:
    """Spam precision/recall over the users the spam run scored, and kind agreement."""
    run = await _latest(conn, "spam")
    if run is None:
        return {"error": "no finished spam run"}
    rows = await conn.fetch("SELECT user_id, is_spam, kind FROM spam_scores WHERE run_id = $1", run)
    if not rows:
        return {"error": "the spam run scored no user"}
    labels: dict[int, str] = world.spam_labels()
    ids = np.array([r["user_id"] for r in rows])
    predicted = np.array([r["is_spam"] for r in rows])
    actual = np.array([int(i) in labels for i in ids])
    metrics: dict[str, Any] = {"run_id": run, **binary_metrics(predicted, actual)}
    kinds = {"link_spam": "link", "fake_batch": "fake", "follow_churn": "churn"}
    both = [r for r in rows if r["is_spam"] and r["user_id"] in labels]
    if both:
        metrics["kind_accuracy"] = float(
            np.mean([kinds[labels[r["user_id"]]] == r["kind"] for r in both])
        )
    return metrics


async def evaluate_virality(conn: asyncpg.Connection, world: Any, threshold: int) -> dict[str, Any]:
    """Per model: each track's last prediction against the truth's viral flag."""
    run = await _latest(conn, "virality")
    if run is None:
        return {"error": "no finished virality run"}
    rows = await conn.fetch(
        "SELECT DISTINCT ON (model, track_id) model, track_id, predicted_viral "
        "FROM virality_scores WHERE run_id = $1 "
        "ORDER BY model, track_id, hours_after_upload DESC",
        run,
    )
    if not rows:
        return {"error": "the virality run scored no track"}
    viral = world.viral(threshold)
    by_model: dict[str, Any] = {}
    for model in sorted({r["model"] for r in rows}):
        mine = [r for r in rows if r["model"] == model]
        predicted = np.array([r["predicted_viral"] for r in mine])
        actual = np.array([bool(viral[r["track_id"] - 1]) for r in mine])
        by_model[model] = binary_metrics(predicted, actual)
    return {"run_id": run, "threshold": threshold, "by_model": by_model}


async def evaluate_revisit(conn: asyncpg.Connection, world: Any) -> dict[str, Any]:
    """Fit error and the MDL shock count against the shocks planted in the observed span."""
    run = await _latest(conn, "revisit")
    if run is None:
        return {"error": "no finished revisit run"}
    fits = await conn.fetch(
        "SELECT f.track_id, f.n_shocks, f.rmse, f.revisit_share, f.error, "
        "min(s.observed_at) AS first, max(s.observed_at) AS last "
        "FROM revisit_fits f LEFT JOIN track_stats s ON s.track_id = f.track_id "
        "WHERE f.run_id = $1 GROUP BY f.track_id, f.n_shocks, f.rmse, f.revisit_share, f.error",
        run,
    )
    fitted = [f for f in fits if f["error"] is None and f["n_shocks"] is not None]
    out: dict[str, Any] = {"run_id": run, "tracks": len(fits), "fitted": len(fitted)}
    if not fitted:
        return out
    table = world.shock_table()
    exact = 0
    for f in fitted:
        first = int(f["first"].timestamp() * 1e6)
        last = int(f["last"].timestamp() * 1e6)
        mine = (table["track_id"] == f["track_id"]) & (table["start_us"] <= last)
        # Shocks that started before the window and are spent count too: the fit sees
        # their tail; the planted count is shocks started before the last observation.
        planted = int(np.sum(mine & (table["start_us"] >= first - 7 * 86400 * 1_000_000)))
        exact += int(planted == f["n_shocks"])
    out["rmse_median"] = float(np.median([f["rmse"] for f in fitted]))
    out["shock_count_exact_share"] = exact / len(fitted)
    out["mean_shocks"] = float(np.mean([f["n_shocks"] for f in fitted]))
    shares = [f["revisit_share"] for f in fitted if f["revisit_share"] is not None]
    if shares:
        out["revisit_share_median"] = float(np.median(shares))
    return out


async def evaluate_network(conn: asyncpg.Connection, world: Any) -> dict[str, Any]:
    """The global graph figures, and how many planted mavens rank in the PageRank top 1%."""
    run = await _latest(conn, "network")
    if run is None:
        return {"error": "no finished network run"}
    row = await conn.fetchrow(
        "SELECT nodes, edges, clustering, reciprocity FROM network_stats "
        "WHERE run_id = $1 AND scope = 'global'",
        run,
    )
    out: dict[str, Any] = {"run_id": run, **(dict(row) if row else {})}
    ranked = await conn.fetch(
        "SELECT user_id FROM user_graph_stats WHERE run_id = $1 ORDER BY pagerank DESC", run
    )
    if ranked:
        top = {r["user_id"] for r in ranked[: max(1, len(ranked) // 100)]}
        mavens = {int(m) for m in world.maven_ids()}
        crawled = {r["user_id"] for r in ranked} & mavens
        if crawled:
            out["mavens_in_pagerank_top1pct"] = len(top & crawled) / len(crawled)
    return out


async def evaluate_all(dsn: str, *, seed: int, users: int, threshold: int) -> dict[str, Any]:
    """Every model's evaluation against the world of ``seed`` and ``users``."""
    from simulator.world import World

    world = World.generate(seed, users)
    async with database.connection(dsn) as conn:
        return {
            "spam": await evaluate_spam(conn, world),
            "virality": await evaluate_virality(conn, world, threshold),
            "revisit": await evaluate_revisit(conn, world),
            "network": await evaluate_network(conn, world),
        }
