"""Cascades as flat arrays: one row per track, one row per share event (CSR layout).

Every model of :mod:`scoring.virality` reads a :class:`Cascades`: track ``i``'s events
are ``times[offsets[i]:offsets[i + 1]]`` (hours after upload, sorted) and the users
who shared. Keeping events flat lets every feature be computed for 100,000 cascades
with a handful of vectorised numpy passes instead of a Python loop per track.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from schemas.errors import InputError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Cascades:
    """Share events of ``n`` tracks.

    ``observed_hours`` is how long each track has been watched (its age when the data
    was read, capped by the model's horizon): events later than that are unknown, and
    a cascade that has not reached the threshold within it is *censored*, not negative.
    """

    track_ids: IntArray
    artists: IntArray
    offsets: IntArray
    times: FloatArray
    users: IntArray
    observed_hours: FloatArray

    @property
    def n(self) -> int:
        """Number of cascades (tracks)."""
        return int(self.track_ids.shape[0])

    @property
    def cascade_of_event(self) -> IntArray:
        """For every event, the index of its cascade."""
        return np.repeat(np.arange(self.n, dtype=np.int64), np.diff(self.offsets))

    def sizes_at(self, hours: float | FloatArray) -> IntArray:
        """Number of shares with time <= ``hours`` (a scalar or one time per cascade)."""
        limit = np.broadcast_to(np.asarray(hours, dtype=np.float64), (self.n,))
        before = self.times <= limit[self.cascade_of_event]
        return np.bincount(self.cascade_of_event[before], minlength=self.n).astype(np.int64)

    def final_sizes(self) -> IntArray:
        """Number of shares observed in total."""
        return np.diff(self.offsets).astype(np.int64)

    def size_matrix(self, grid: FloatArray) -> npt.NDArray[np.int32]:
        """``sizes[c, g]``: shares of cascade ``c`` at or before ``grid[g]`` (int32)."""
        grid = np.asarray(grid, dtype=np.float64)
        out = np.zeros((self.n, grid.shape[0]), dtype=np.int32)
        if self.times.size == 0:
            return out
        # Bin every event into the first grid point at or after it, then accumulate.
        bins = np.searchsorted(grid, self.times, side="left")
        keep = bins < grid.shape[0]
        np.add.at(out, (self.cascade_of_event[keep], bins[keep]), 1)
        np.cumsum(out, axis=1, out=out)
        return out

    def virality_times(self, threshold: int) -> FloatArray:
        """Hours after upload at which each cascade reached ``threshold`` shares (inf if never)."""
        if threshold < 1:
            raise InputError(f"threshold: must be at least 1, got {threshold}")
        out = np.full(self.n, np.inf)
        counts = np.diff(self.offsets)
        hit = counts >= threshold
        out[hit] = self.times[self.offsets[:-1][hit] + threshold - 1]
        return out

    def subset(self, index: IntArray | BoolArray) -> Cascades:
        """The cascades selected by ``index`` (indices or a mask), in that order."""
        idx = np.arange(self.n)[index] if np.asarray(index).dtype == bool else np.asarray(index)
        idx = idx.astype(np.int64)
        starts, ends = self.offsets[idx], self.offsets[idx + 1]
        lengths = ends - starts
        offsets = np.zeros(idx.shape[0] + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        take = _ranges(starts, lengths)
        return Cascades(
            track_ids=self.track_ids[idx],
            artists=self.artists[idx],
            offsets=offsets,
            times=self.times[take],
            users=self.users[take],
            observed_hours=self.observed_hours[idx],
        )


def _ranges(starts: IntArray, lengths: IntArray) -> IntArray:
    """Concatenation of ``arange(s, s + l)`` for each pair, without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    shift = np.repeat(starts - (ends - lengths), lengths)
    return np.asarray(np.arange(total, dtype=np.int64) + shift, dtype=np.int64)


def from_events(
    track_ids: npt.ArrayLike,
    artists: npt.ArrayLike,
    event_tracks: npt.ArrayLike,
    event_users: npt.ArrayLike,
    event_hours: npt.ArrayLike,
    observed_hours: npt.ArrayLike,
) -> Cascades:
    """Build :class:`Cascades` from unsorted event rows.

    Events of tracks not in ``track_ids`` and events before the upload (negative hours,
    a clock skew between the track and its timeline) are dropped; a user who shared the
    same track twice counts once, at the first time, because a cascade is a set of
    people reached.
    """
    tracks = np.asarray(track_ids, dtype=np.int64)
    if np.unique(tracks).shape[0] != tracks.shape[0]:
        raise InputError("track_ids: contains duplicates")
    art = np.asarray(artists, dtype=np.int64)
    obs = np.asarray(observed_hours, dtype=np.float64)
    et = np.asarray(event_tracks, dtype=np.int64)
    eu = np.asarray(event_users, dtype=np.int64)
    eh = np.asarray(event_hours, dtype=np.float64)
    if not (art.shape == tracks.shape == obs.shape):
        raise InputError("artists/observed_hours: must have one entry per track")
    if not (et.shape == eu.shape == eh.shape):
        raise InputError("events: track, user and time arrays differ in length")
    if tracks.size:
        order_tracks = np.argsort(tracks, kind="stable")
        sorted_tracks = tracks[order_tracks]
        pos = np.clip(np.searchsorted(sorted_tracks, et), 0, tracks.shape[0] - 1)
        known = (sorted_tracks[pos] == et) & np.isfinite(eh) & (eh >= 0)
        cidx = order_tracks[pos[known]]
    else:
        known = np.zeros(et.shape, dtype=bool)
        cidx = np.zeros(0, dtype=np.int64)
    eu, eh = eu[known], eh[known]
    # First share of each (cascade, user): sort by cascade, user, time and keep the first.
    order = np.lexsort((eh, eu, cidx))
    cidx, eu, eh = cidx[order], eu[order], eh[order]
    first = np.ones(cidx.shape[0], dtype=bool)
    first[1:] = (cidx[1:] != cidx[:-1]) | (eu[1:] != eu[:-1])
    cidx, eu, eh = cidx[first], eu[first], eh[first]
    order = np.lexsort((eu, eh, cidx))
    cidx, eu, eh = cidx[order], eu[order], eh[order]
    offsets = np.zeros(tracks.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(cidx, minlength=tracks.shape[0]), out=offsets[1:])
    return Cascades(
        track_ids=tracks, artists=art, offsets=offsets, times=eh, users=eu, observed_hours=obs
    )


def split_by_track(n: int, test_fraction: float, seed: int) -> tuple[IntArray, IntArray]:
    """Disjoint random train/test index sets over ``n`` cascades (a split by track)."""
    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"test_fraction: must be in (0, 1), got {test_fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    n_test = round(n * test_fraction)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def decision_grid(horizon_hours: float, step_hours: float) -> FloatArray:
    """Decision times ``step, 2*step, ..., horizon`` (hours after upload)."""
    if step_hours <= 0 or horizon_hours < step_hours:
        raise InputError(
            f"step_hours/horizon_hours: need 0 < step <= horizon, got {step_hours}/{horizon_hours}"
        )
    count = int(np.floor(horizon_hours / step_hours + 1e-9))
    return step_hours * np.arange(1, count + 1, dtype=np.float64)
