"""Ground truth of a world, computed from the seed alone, as Parquet files.

``soundfleet simulator truth --seed S --users N --out DIR`` (or :func:`write`) writes:

============================ ==========================================================
``summary.json``             seed, users, core, start/end (ISO), counts, viral threshold
``users.parquet``            core users: id, gone, created_s, spam_kind (``none``,
                             ``link_spam``, ``fake_batch``, ``follow_churn``), community,
                             maven, artist, camouflaged (spam hiding its signatures),
                             lookalike (bit mask of spam-like traits of a real user:
                             1 shortener, 2 explicit bio, 4 shared sign-up second,
                             8 re-follow)
``gone_ids.parquet``         every gone id in ``1..users`` (core and procedural users)
``follows.parquet``          src (follower), dst (followee), t_us; repeated pairs are
                             separate follow events (follow-churn bots)
``reposts.parquet``          user_id, track_id, t_us
``likes.parquet``            user_id, track_id, t_us
``tracks.parquet``           track_id, user_id, created_s, public, quality, cascade_size
                             (final reposts), likes, viral, period_s, period_amp
``shocks.parquet``           track_id, start_us, s0, i0, beta, gamma, omega
``play_curves.parquet``      track_id, hour (since upload; time = created_s + 3600 hour),
                             plays (noiseless plays in [hour, hour+1)), cumulative
                             (noiseless plays before that hour), float32, public tracks
============================ ==========================================================

The same data are available in memory through :func:`compute` (a
:class:`~simulator.world.World`); see :mod:`simulator.world` for its accessors.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from simulator.params import LIFE_HOURS, SPAM_KINDS
from simulator.world import World

GONE_CHUNK = 1_000_000


def compute(seed: int, users: int, core: int | None = None, start: datetime | None = None) -> World:
    """The world (and so its ground truth) of ``seed``: see :mod:`simulator.world`."""
    return World.generate(seed, users, core=core, start=start)


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC).isoformat().replace("+00:00", "Z")


def write(world: World, out: Path, threshold: int = 25) -> dict[str, object]:
    """Write ``world``'s ground truth under ``out``; returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    ids = np.arange(1, world.core + 1, dtype=np.int64)
    kinds = np.array(SPAM_KINDS, dtype=object)[world.spam_kind.astype(np.int64)]
    pq.write_table(
        pa.table(
            {
                "id": ids,
                "gone": world.gone,
                "created_s": world.created_s,
                "spam_kind": pa.array(kinds.tolist(), pa.string()),
                "community": world.community,
                "maven": world.maven,
                "artist": world.artist,
                "camouflaged": world.camouflaged,
                "lookalike": world.lookalike,
            }
        ),
        out / "users.parquet",
    )
    gone_parts = [world.gone_ids()]
    for lo in range(world.core + 1, world.users + 1, GONE_CHUNK):
        chunk = np.arange(lo, min(lo + GONE_CHUNK, world.users + 1), dtype=np.int64)
        gone_parts.append(chunk[world.is_gone(chunk)])
    pq.write_table(pa.table({"id": np.concatenate(gone_parts)}), out / "gone_ids.parquet")
    f = world.follows
    pq.write_table(pa.table({"src": f.src, "dst": f.dst, "t_us": f.t_us}), out / "follows.parquet")
    for name, ev in (("reposts", world.reposts), ("likes", world.likes)):
        pq.write_table(
            pa.table({"user_id": ev.src, "track_id": ev.dst, "t_us": ev.t_us}),
            out / f"{name}.parquet",
        )
    t = world.tracks
    sizes = world.cascade_sizes()
    pq.write_table(
        pa.table(
            {
                "track_id": t.id,
                "user_id": t.user_id,
                "created_s": t.created_s,
                "public": t.public,
                "quality": t.quality,
                "cascade_size": sizes,
                "likes": world.like_totals(),
                "viral": sizes >= threshold,
                "period_s": world.period_s,
                "period_amp": world.period_amp,
            }
        ),
        out / "tracks.parquet",
    )
    pq.write_table(pa.table(world.shock_table()), out / "shocks.parquet")
    pub = t.id[t.public]
    _, hourly, cum = world.play_curve(pub)
    n = pub.size
    pq.write_table(
        pa.table(
            {
                "track_id": np.repeat(pub, LIFE_HOURS + 1),
                "hour": np.tile(np.arange(LIFE_HOURS + 1, dtype=np.int32), n),
                "plays": np.concatenate((hourly, np.zeros((n, 1))), axis=1)
                .astype(np.float32)
                .ravel(),
                "cumulative": cum.astype(np.float32).ravel(),
            }
        ),
        out / "play_curves.parquet",
        compression="zstd",
    )
    summary: dict[str, object] = {
        "seed": world.seed,
        "regime": world.regime.name,
        "users": world.users,
        "core": world.core,
        "start": _iso(world.start_us),
        "end": _iso(world.end_us),
        "viral_threshold": threshold,
        "live_core_users": int((~world.gone).sum()),
        "gone_ids": int(sum(p.size for p in gone_parts)),
        "spam": {k: int((world.spam_kind == i).sum()) for i, k in enumerate(SPAM_KINDS) if i},
        "camouflaged_spam": int(world.camouflaged.sum()),
        "lookalike_users": int((world.lookalike > 0).sum()),
        "mavens": int(world.maven.sum()),
        "follows": len(world.follows),
        "tracks": int(t.id.size),
        "public_tracks": int(n),
        "reposts": len(world.reposts),
        "likes": len(world.likes),
        "viral_tracks": int((sizes >= threshold).sum()),
        "shocks": int(world.shocks.track.size),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
