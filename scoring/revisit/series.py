"""Regular per-window play series from irregular cumulative counter snapshots.

``track_stats`` holds snapshots of a track's cumulative ``playback_count`` taken
whenever a poll ran: irregular, with gaps, sometimes lowered by a recount. A window's
plays are the counter's rise across the window, with the counter linearly interpolated
at the window edges between the two snapshots around each edge. Gaps are explicit:

* an edge whose surrounding snapshots are more than ``max_interp`` windows apart, or
  that lies outside the observed span, is unknown, so the windows on both sides are NaN;
* a decrease of the counter (a recount) makes the interval it happened in unknown and
  re-bases the later snapshots so the series continues; each one is reported in
  ``notes``;
* a collection outage, a stretch of near-zero windows inside an otherwise steady level
  (:func:`mark_outages`), is unknown too: the counter did not count, nobody stopped
  listening.

Negative counters are not repaired: :class:`SeriesError` says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

WINDOWS: dict[str, int] = {"hourly": 3600, "daily": 86400}
# Natural periodicities of each window, in windows: a week of days; a day or a week of
# hours.
PERIODS: dict[str, tuple[int, ...]] = {"hourly": (24, 168), "daily": (7,)}
# Outages (see mark_outages): a window is suspect below this share of the level around
# it, the level being the median of this many windows on each side, and only where
# that level is at least this many plays (below it a near-zero window is count noise:
# at 20 plays per window, 1 play or none has Poisson probability ~1e-8).
OUTAGE_SHARE = 0.05
OUTAGE_CONTEXT = 28
OUTAGE_MIN_LEVEL = 20.0


class SeriesError(ValueError):
    """The snapshots cannot make a series (the message says why)."""


@dataclass
class Series:
    """Plays per window (NaN = unknown) starting at ``start`` (epoch seconds)."""

    start: float
    window_s: int
    plays: FloatArray
    notes: list[str] = field(default_factory=list)

    @property
    def observed(self) -> int:
        """Number of windows with a known play count."""
        return int(np.isfinite(self.plays).sum())


def regularize(
    observed_at: FloatArray,
    counts: FloatArray,
    window_s: int,
    *,
    max_interp: float = 3.0,
) -> Series:
    """Per-window plays from snapshots at ``observed_at`` (epoch s) of cumulative ``counts``."""
    t = np.asarray(observed_at, dtype=np.float64)
    c = np.asarray(counts, dtype=np.float64)
    keep = np.isfinite(t) & np.isfinite(c)
    t, c = t[keep], c[keep]
    order = np.argsort(t, kind="stable")
    t, c = t[order], c[order]
    if len(t) < 2:
        raise SeriesError(f"{len(t)} snapshot(s) with a play count: at least 2 are needed")
    if np.any(c < 0):
        first = int(np.flatnonzero(c < 0)[0])
        raise SeriesError(f"negative playback_count {c[first]:.0f} at epoch {t[first]:.0f}")
    notes: list[str] = []
    diffs = np.diff(c)
    drops = np.flatnonzero(diffs < 0)
    broken = np.zeros(len(t) - 1, dtype=bool)
    if drops.size:
        for d in drops:
            notes.append(
                f"recount: playback_count fell from {c[d]:.0f} to {c[d + 1]:.0f}"
                f" at epoch {t[d + 1]:.0f}; that interval is a gap, later counts re-based"
            )
        broken[drops] = True
        # Re-base: a drop contributes nothing, so later counts continue from the last one.
        diffs = np.where(broken, 0.0, diffs)
        c = np.concatenate([[c[0]], c[0] + np.cumsum(diffs)])

    w = float(window_s)
    first_edge = np.ceil(t[0] / w) * w
    last_edge = np.floor(t[-1] / w) * w
    if last_edge - first_edge < w:
        raise SeriesError("snapshots span less than one whole window")
    edges = np.arange(first_edge, last_edge + w / 2, w)
    # Snapshot interval holding each edge: t[j] <= edge <= t[j + 1].
    j = np.clip(np.searchsorted(t, edges, side="right") - 1, 0, len(t) - 2)
    span = t[j + 1] - t[j]
    frac = np.where(span > 0, (edges - t[j]) / np.where(span > 0, span, 1.0), 0.0)
    cum = c[j] + frac * (c[j + 1] - c[j])
    exact = np.isin(edges, t)
    unknown = ((span > max_interp * w) | broken[j]) & ~exact
    cum = np.where(unknown, np.nan, cum)
    plays = np.diff(cum)
    # A window is also unknown when a recount happened strictly inside it.
    for d in drops:
        inside = (edges[:-1] < t[d + 1]) & (edges[1:] > t[d])
        plays[inside] = np.nan
    plays, outages = mark_outages(plays)
    notes.extend(outages)
    gaps = int(np.isnan(plays).sum())
    if gaps:
        notes.append(f"{gaps} of {len(plays)} windows unknown (no snapshots close enough)")
    return Series(start=float(edges[0]), window_s=window_s, plays=plays, notes=notes)


def mark_outages(
    plays: FloatArray,
    *,
    share: float = OUTAGE_SHARE,
    context: int = OUTAGE_CONTEXT,
    min_level: float = OUTAGE_MIN_LEVEL,
) -> tuple[FloatArray, list[str]]:
    """``plays`` with collection outages marked unknown (NaN), and a note per outage.

    An outage is a run of windows each below ``share`` of the level on *both* sides of
    it: the median of the ``context`` known windows before the run and of the
    ``context`` after it, each at least ``min_level``. Listening does not fall twenty-fold
    for days and come back to where it was; a counter that stopped being read does (e.g.
    19 days of ~100 views inside ~85,000 a day). Both sides are required, so a rise from
    nothing (a series' start) or a fall that does not recover is never touched, and a
    run with fewer than ``context`` windows after it (the series' end) is left as it is.
    A periodic trough is not an outage: its windows stay well above ``share`` of the
    level (the simulator's deepest, amplitude 0.6, at 0.4 of the mean).
    """
    y = np.array(plays, dtype=np.float64)
    n = len(y)
    notes: list[str] = []
    t = context
    while t < n - context:
        before = y[t - context : t]
        before = before[np.isfinite(before)]
        level = float(np.median(before)) if before.size * 2 >= context else 0.0
        if level < min_level or not y[t] < share * level:
            t += 1
            continue
        end = t
        while end < n and not y[end] >= share * level:
            end += 1
        after = y[end : end + context]
        after = after[np.isfinite(after)]
        run = y[t:end].copy()
        if after.size * 2 >= context and end + context <= n:
            level_after = float(np.median(after))
            if level_after >= min_level and np.all(run[np.isfinite(run)] < share * level_after):
                y[t:end] = np.nan
                notes.append(
                    f"outage: windows {t}..{end - 1} hold {np.nansum(run):.0f} plays against"
                    f" a level of {level:.0f} before and {level_after:.0f} after per window;"
                    " marked unknown"
                )
        t = end
    return y, notes
