"""``soundfleet report``: PNG plots of what the fleet crawled and scored, and an index.html.

Every figure reads the database only (tables and the latest finished scoring runs); a
figure without data is replaced by a line in the index saying what is missing, so a
report of a partial crawl is still a report.
"""

from __future__ import annotations

import asyncio
import html
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure as MplFigure

from runtime import database

# The triad-census names of the 13 connected motifs, in the order the counts are stored
# (scoring.network.core.MOTIF_NAMES; not imported: the report must not load igraph).
MOTIF_NAMES = (
    "021D", "021U", "021C", "111D", "111U", "030T", "030C", "201", "120D", "120U", "120C",
    "210", "300",
)  # fmt: skip
HEADER_TABLES = ("users", "user_ids_gone", "tracks", "follows", "reposts", "likes", "track_stats")


@dataclass(frozen=True)
class Figure:
    """One figure of the report: its file (None when it could not be drawn) and caption."""

    name: str
    title: str
    caption: str
    path: Path | None
    missing: str | None = None


async def _latest_run(conn: asyncpg.Connection, model: str) -> int | None:
    run: int | None = await conn.fetchval(
        "SELECT max(id) FROM scoring_runs WHERE model = $1 AND state = 'done'", model
    )
    return run


async def _run_metrics(conn: asyncpg.Connection, run: int) -> dict[str, Any]:
    """The metrics a scoring run reported (empty when it reported none)."""
    metrics: dict[str, Any] = json.loads(
        await conn.fetchval("SELECT metrics FROM scoring_runs WHERE id = $1", run) or "{}"
    )
    return metrics


def _grid(n: int, cols: int = 3) -> tuple[MplFigure, np.ndarray]:
    """A figure of ``n`` panels, ``cols`` a row: no empty row is drawn."""
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.5 * rows), squeeze=False)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return fig, axes


def _save(fig: MplFigure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


async def timelines(conn: asyncpg.Connection, out: Path) -> Figure | str:
    """Cumulative reposts over time per track; reposts by top-followed reposters marked."""
    top = await conn.fetch(
        "SELECT track_id, count(*) AS n FROM reposts GROUP BY track_id ORDER BY n DESC LIMIT 6"
    )
    if not top:
        return "no reposts crawled yet (run a track_timelines job)"
    fig, axes = _grid(len(top))
    for ax, row in zip(axes.flat, top, strict=False):
        events = await conn.fetch(
            "SELECT r.event_time, coalesce(u.followers_count, 0) AS followers "
            "FROM reposts r LEFT JOIN users u ON u.id = r.user_id "
            "WHERE r.track_id = $1 ORDER BY r.event_time",
            row["track_id"],
        )
        t0 = events[0]["event_time"]
        hours = np.array([(e["event_time"] - t0).total_seconds() / 3600 for e in events])
        followers = np.array([e["followers"] for e in events], dtype=float)
        cumulative = np.arange(1, len(events) + 1)
        ax.step(hours, cumulative, where="post", color="tab:blue", lw=1.5)
        cut = np.quantile(followers, 0.95) if len(followers) > 1 else np.inf
        mavens = followers >= max(cut, 1)
        ax.scatter(
            hours[mavens],
            cumulative[mavens],
            color="tab:red",
            s=28,
            zorder=3,
            label="repost by a top-5% followed reposter",
        )
        ax.set_title(f"track {row['track_id']} ({row['n']} reposts)", fontsize=10)
        ax.set_xlabel("hours since first repost")
        ax.set_ylabel("cumulative reposts")
    axes.flat[0].legend(fontsize=8, loc="upper left")
    path = _save(fig, out / "timelines.png")
    return Figure(
        "timelines",
        "Reposting timelines",
        "Cumulative reposts per track; red dots are reposts by the most-followed "
        "reposters (the 'maven' spikes of the seed study).",
        path,
    )


async def motifs(conn: asyncpg.Connection, out: Path) -> Figure | str:
    """Motif significance profiles (z-scores normalised) and counts per artist."""
    run = await _latest_run(conn, "network")
    if run is None:
        return "no finished network scoring run"
    rows = await conn.fetch(
        "SELECT scope, motif_counts, motif_z FROM network_stats WHERE run_id = $1 "
        "AND motif_z IS NOT NULL ORDER BY scope",
        run,
    )
    if not rows:
        return "the network run has no motif z-scores"
    fig, (ax_z, ax_c) = plt.subplots(1, 2, figsize=(13, 4.8))
    x = np.arange(1, 14)
    for row in rows[:8]:
        z = np.nan_to_num(np.array(row["motif_z"], dtype=float))
        norm = np.linalg.norm(z)
        ax_z.plot(x, z / norm if norm > 0 else z, marker="o", lw=1.2, label=row["scope"])
        ax_c.plot(
            x, np.array(row["motif_counts"], dtype=float) + 1, marker=".", lw=1, label=row["scope"]
        )
    ax_z.axhline(0, color="grey", lw=0.8)
    ax_z.set(title="significance profile (normalised z-scores)", ylabel="z / ||z||")
    ax_c.set(title="motif counts", ylabel="count + 1", yscale="log")
    for ax in (ax_z, ax_c):
        ax.set_xticks(x, MOTIF_NAMES, rotation=60, fontsize=8)
        ax.set_xlabel("motif (triad-census name: mutual, asymmetric, null dyads + type)")
    ax_z.legend(fontsize=7)
    path = _save(fig, out / "motifs.png")
    return Figure(
        "motifs",
        "Three-node motifs",
        "The 13 connected directed triads per scope, by their triad-census names (e.g. "
        "021U: two accounts following a third; 030T: a feed-forward triangle; 300: three "
        "mutual follows): counts, and z-scores against degree-preserving randomisations.",
        path,
    )


async def repeated_follows(conn: asyncpg.Connection, out: Path) -> Figure | str:
    """The users with the most repeated follow events, and the multi-edge dyad census."""
    run = await _latest_run(conn, "network")
    if run is None:
        return "no finished network scoring run"
    rows = await conn.fetch(
        "SELECT user_id, repeated_follows, max_follow_multiplicity FROM user_graph_stats"
        " WHERE run_id = $1 AND repeated_follows > 0"
        " ORDER BY repeated_follows DESC, user_id LIMIT 15",
        run,
    )
    metrics = await _run_metrics(conn, run)
    dyads: dict[str, int] = metrics.get("multi_edge_dyads") or {}
    if not rows:
        return "no crawled user followed the same account twice (no multi-edges)"
    fig, (ax_u, ax_d) = plt.subplots(1, 2, figsize=(13, 4.8))
    y = np.arange(len(rows))[::-1]
    ax_u.barh(y, [r["repeated_follows"] for r in rows], color="tab:red")
    ax_u.set_yticks(
        y, [f"{r['user_id']} (max x{r['max_follow_multiplicity']})" for r in rows], fontsize=8
    )
    ax_u.set(title="most repeated follow events", xlabel="follow events beyond the first")
    if dyads:
        names = list(dyads)
        ax_d.bar(np.arange(len(names)), [dyads[k] + 1 for k in names], color="tab:blue")
        ax_d.set_xticks(np.arange(len(names)), [k.replace("_", "\n") for k in names], fontsize=8)
        ax_d.set(title="dyads by multiplicity", ylabel="count + 1", yscale="log")
    else:
        ax_d.axis("off")
        ax_d.text(0.5, 0.5, "the network run predates the dyad census", ha="center")
    path = _save(fig, out / "repeated_follows.png")
    return Figure(
        "repeated_follows",
        "Repeated follows",
        "Follow churn as multi-edges: the users with the most follow events beyond the "
        "first to the same account (max multiplicity in brackets), and the two-node "
        "motifs counted with multiplicity.",
        path,
    )


async def clustering(conn: asyncpg.Connection, out: Path) -> Figure | str:
    """Clustering and reciprocity compared across artists' ego networks."""
    run = await _latest_run(conn, "network")
    if run is None:
        return "no finished network scoring run"
    rows = await conn.fetch(
        "SELECT scope, clustering, reciprocity, nodes FROM network_stats WHERE run_id = $1 "
        "ORDER BY scope = 'global' DESC, nodes DESC LIMIT 12",
        run,
    )
    if not rows:
        return "the network run has no statistics"
    labels = [r["scope"] for r in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6, len(rows) * 0.9), 4.5))
    ax.bar(x - 0.2, [r["clustering"] or 0 for r in rows], 0.4, label="global clustering")
    ax.bar(x + 0.2, [r["reciprocity"] or 0 for r in rows], 0.4, label="reciprocity")
    ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("value")
    ax.legend()
    path = _save(fig, out / "clustering.png")
    return Figure(
        "clustering",
        "Clustering and reciprocity",
        "Transitivity and edge reciprocity of each artist's ego network and of the "
        "whole crawled graph.",
        path,
    )


async def spam(conn: asyncpg.Connection, out: Path) -> Figure | str:
    """Users in a 2-D PCA projection of their (log) counts, coloured by spam cluster."""
    run = await _latest_run(conn, "spam")
    if run is None:
        return "no finished spam scoring run"
    rows = await conn.fetch(
        "SELECT s.cluster, s.label, s.is_spam, u.followers_count, u.followings_count, "
        "u.track_count, u.likes_count, u.reposts_count, u.playlist_count, u.comments_count "
        "FROM spam_scores s JOIN users u ON u.id = s.user_id WHERE s.run_id = $1 "
        "ORDER BY s.user_id LIMIT 20000",
        run,
    )
    if len(rows) < 3:
        return "too few scored users to project"
    feats = np.log1p(np.nan_to_num(np.array([list(r.values())[3:] for r in rows], dtype=float)))
    feats = feats[:, feats.std(0) > 0]  # a constant count carries no direction
    if feats.shape[1] < 2:
        return "the scored users' counts do not vary: nothing to project"
    feats = (feats - feats.mean(0)) / feats.std(0)
    _, _, vt = np.linalg.svd(feats, full_matrices=False)
    xy = feats @ vt[:2].T
    labels = np.array([r["label"] for r in rows])
    is_spam = np.array([r["is_spam"] for r in rows])
    fig, ax = plt.subplots(figsize=(7.5, 6))
    # spam last, so the few flagged users are drawn over the many others
    for label in sorted(set(labels), key=lambda name: (name == "spam", name)):
        sel = labels == label
        ax.scatter(xy[sel, 0], xy[sel, 1], s=6, alpha=0.6, label=f"{label} ({sel.sum()})")
    ax.scatter(
        xy[is_spam, 0],
        xy[is_spam, 1],
        s=18,
        facecolors="none",
        edgecolors="k",
        lw=0.5,
        label="flagged spam",
    )
    ax.set(xlabel="PC 1", ylabel="PC 2", title="users by spam cluster")
    ax.legend(fontsize=8, markerscale=2)
    path = _save(fig, out / "spam_clusters.png")
    return Figure(
        "spam",
        "Spam clusters",
        "Users by the group the spam model gave them (K-Means clusters named from their "
        "median member's behaviour, learned by an MLP), projected on the two principal "
        "components of their log counts; circled: flagged as spam.",
        path,
    )


async def virality(conn: asyncpg.Connection, out: Path) -> Figure | str:
    """Virality scores over hours since upload, for predicted viral and non-viral tracks."""
    run = await _latest_run(conn, "virality")
    if run is None:
        return "no finished virality scoring run"
    rows = await conn.fetch(
        "SELECT model, track_id, hours_after_upload, score, predicted_viral "
        "FROM virality_scores WHERE run_id = $1 ORDER BY model, track_id, hours_after_upload",
        run,
    )
    if not rows:
        return "the virality run scored no tracks"
    models = sorted({r["model"] for r in rows})
    ncols = min(3, len(models))
    nrows = -(-len(models) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 3.8 * nrows), squeeze=False)
    for ax in list(axes.flat)[len(models) :]:
        ax.axis("off")
    for ax, model in zip(axes.flat, models, strict=False):
        per_track: dict[int, list[asyncpg.Record]] = {}
        for r in rows:
            if r["model"] == model:
                per_track.setdefault(r["track_id"], []).append(r)
        scores = np.array([r["score"] for s in per_track.values() for r in s], dtype=float)
        if np.ptp(scores) == 0:
            # a flat line would look like a prediction; say what it is instead
            flagged = sum(bool(s[-1]["predicted_viral"]) for s in per_track.values())
            ax.text(
                0.5,
                0.5,
                f"every score is {scores[0]:g}:\nthis model ranks nothing here\n"
                f"({len(per_track)} tracks, {flagged} flagged)",
                ha="center",
                va="center",
                transform=ax.transAxes,
                fontsize=9,
            )
            ax.set(title=model, xticks=[], yticks=[])
            continue
        shown = {True: 0, False: 0}
        # the tracks whose scores moved most first: a sample by id is mostly zeros
        ranked = sorted(per_track.values(), key=lambda s: -max(abs(r["score"]) for r in s))
        for series in ranked:
            viral = bool(series[-1]["predicted_viral"])
            if shown[viral] >= 25:
                continue
            shown[viral] += 1
            ax.plot(
                [s["hours_after_upload"] for s in series],
                [s["score"] for s in series],
                color="tab:red" if viral else "tab:grey",
                alpha=0.7 if viral else 0.35,
                lw=1.2,
            )
        ax.plot([], [], color="tab:red", label="predicted viral")
        ax.plot([], [], color="tab:grey", label="predicted not viral")
        ax.set(title=model, xlabel="hours after upload", ylabel="score")
        if np.ptp(scores) > 1e3:
            ax.set_yscale("symlog")  # heavy-tailed scores (counts, sizes): keep both ends
        ax.legend(fontsize=8)
    path = _save(fig, out / "virality.png")
    return Figure(
        "virality",
        "Virality scores over time",
        "Each line is a track's score at successive prediction times: per model, the 25 "
        "tracks it flags and the 25 it does not whose scores move most. "
        + await _viral_counts(conn, run),
        path,
    )


async def _viral_counts(conn: asyncpg.Connection, run: int) -> str:
    """How many tracks the run saw and how many of them went viral (its own labels)."""
    metrics = await _run_metrics(conn, run)
    if "viral" not in metrics:
        return ""
    few = " (too few to tell models apart)" if metrics["viral"] < 30 else ""
    cascades = metrics.get("cascades")
    scored = f"{cascades:,}" if isinstance(cascades, int) else "its"
    return (
        f"The run scored {scored} tracks, {metrics['viral']} of which reached "
        f"{metrics.get('threshold', 'the threshold of')} reposts{few}."
    )


async def revisit(conn: asyncpg.Connection, out: Path) -> Figure | str:
    """Phoenix-R fits: the observed series, the model, and the shocks' start windows."""
    from scoring.revisit.model import Period, Shock, simulate

    run = await _latest_run(conn, "revisit")
    if run is None:
        return "no finished revisit scoring run"
    fits = await conn.fetch(
        'SELECT track_id, "window", n_points, shocks, period, rmse, revisit_share, forecast '
        "FROM revisit_fits WHERE run_id = $1 AND error IS NULL AND n_shocks > 0 "
        "ORDER BY n_shocks DESC, track_id LIMIT 6",
        run,
    )
    if not fits:
        return "the revisit run fitted no track"
    fig, axes = _grid(len(fits))
    for ax, fit in zip(axes.flat, fits, strict=False):
        shocks = [Shock(**s) for s in json.loads(fit["shocks"])]
        period = Period(**json.loads(fit["period"])) if fit["period"] else None
        model, audience = simulate(shocks, fit["n_points"], period)
        forecast = json.loads(fit["forecast"]) if fit["forecast"] else {}
        observed = forecast.get("observed")
        if observed:
            ax.plot(observed, color="k", lw=0.8, alpha=0.7, label="observed")
        ax.plot(model, color="tab:blue", lw=1.4, label="Phoenix-R")
        if fit["revisit_share"] is not None:
            # Only a split the fit identified is drawn (null: plays alone do not tell).
            ax.plot(model - audience, color="tab:orange", lw=1, ls="--", label="revisits")
        for s in shocks:
            ax.axvline(s.start, color="tab:red", lw=0.7, ls=":")
        share = fit["revisit_share"]
        split = forecast.get("revisit_split") or {}
        if share is not None:
            what = f"revisits {share:.0%}"
        elif split.get("revisit_share_range"):
            lo, hi = split["revisit_share_range"]
            what = f"revisits {lo:.0%}-{hi:.0%} (split not identified)"
        else:
            what = "revisit share not identified"
        ax.set_title(f"track {fit['track_id']}: {len(shocks)} shocks, {what}", fontsize=9)
        ax.set_xlabel(f"{fit['window']} window")
        ax.set_ylabel("plays per window")
    axes.flat[0].legend(fontsize=7)
    path = _save(fig, out / "revisit_fits.png")
    return Figure(
        "revisit",
        "Revisit fits",
        "Plays per window, the Phoenix-R fit and its revisit part; dotted lines mark "
        "the shocks' starts chosen by MDL.",
        path,
    )


PLOTS: dict[str, tuple[str, Callable[[asyncpg.Connection, Path], Awaitable[Figure | str]]]] = {
    "timelines": ("Reposting timelines", timelines),
    "motifs": ("Three-node motifs", motifs),
    "clustering": ("Clustering and reciprocity", clustering),
    "repeated_follows": ("Repeated follows", repeated_follows),
    "spam": ("Spam clusters", spam),
    "revisit": ("Revisit fits", revisit),
    "virality": ("Virality scores over time", virality),
}


@dataclass(frozen=True)
class Header:
    """What the report shows: when, from which database, how much, which runs."""

    generated: datetime
    database: str
    rows: dict[str, int]
    runs: dict[str, str]
    context: dict[str, Any]


async def _header(conn: asyncpg.Connection, dsn: str, context: dict[str, Any]) -> Header:
    rows = {t: int(await conn.fetchval(f"SELECT count(*) FROM {t}")) for t in HEADER_TABLES}
    runs = {
        r["model"]: f"run {r['id']}"
        + (f", finished {r['finished_at']:%Y-%m-%d %H:%M} UTC" if r["finished_at"] else "")
        for r in await conn.fetch(
            "SELECT DISTINCT ON (model) model, id, finished_at FROM scoring_runs"
            " WHERE state = 'done' ORDER BY model, id DESC"
        )
    }
    where = database.DatabaseTarget(dsn, embedded=False).describe()
    return Header(datetime.now(UTC), where, rows, runs, context)


def _header_html(h: Header) -> str:
    facts = [("generated", f"{h.generated:%Y-%m-%d %H:%M:%S} UTC"), ("database", h.database)]
    facts += [(k, str(v)) for k, v in h.context.items()]
    facts += [(f"{model} scores", run) for model, run in h.runs.items()] or [
        ("scores", "no finished scoring run")
    ]
    dl = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in facts)
    counts = "".join(
        f"<tr><td>{html.escape(t)}</td><td class='num'>{n:,}</td></tr>" for t, n in h.rows.items()
    )
    return (
        f"<dl id='header'>{dl}</dl><table id='rows'><tr><th>table</th><th>rows</th></tr>"
        f"{counts}</table>"
    )


def _index(figures: list[Figure], header: Header) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>soundfleet report</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "img{max-width:100%;border:1px solid #ddd}.missing{color:#a33}"
        "dl{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em}dt{color:#666}"
        "dd{margin:0}table{border-collapse:collapse}td,th{padding:.15em .6em;"
        "border-bottom:1px solid #eee;text-align:left}.num{text-align:right}</style>"
        "</head><body>",
        "<h1>soundfleet report</h1>",
        _header_html(header),
    ]
    for f in figures:
        parts.append(f"<h2 id='{f.name}'>{html.escape(f.title)}</h2>")
        if f.path is not None:
            parts.append(
                f"<p>{html.escape(f.caption)}</p><img src='{f.path.name}' "
                f"alt='{html.escape(f.title)}'>"
            )
        else:
            parts.append(f"<p class='missing'>Not drawn: {html.escape(f.missing or '')}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


async def _draw_all(dsn: str, out: Path, context: dict[str, Any]) -> tuple[list[Figure], Header]:
    figures: list[Figure] = []
    async with database.connection(dsn) as conn:
        header = await _header(conn, dsn, context)
        for name, (title, draw) in PLOTS.items():
            result = await draw(conn, out)
            if isinstance(result, str):
                figures.append(Figure(name, title, "", None, missing=result))
            else:
                figures.append(result)
    return figures, header


def write_report(dsn: str, out: Path, context: dict[str, Any] | None = None) -> list[Figure]:
    """Draw every figure into ``out`` and write ``out/index.html``; returns the figures.

    ``context`` adds facts to the page's header (the demo's world seed and size).
    """
    out.mkdir(parents=True, exist_ok=True)
    figures, header = asyncio.run(_draw_all(dsn, out, context or {}))
    (out / "index.html").write_text(_index(figures, header), encoding="utf-8")
    return figures
